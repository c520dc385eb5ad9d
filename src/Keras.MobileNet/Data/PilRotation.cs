namespace Keras.MobileNet.Data;

/// <summary>
/// Pillow's Image.rotate(angle, NEAREST) as torchvision calls it (about the centre, canvas kept): the inverse matrix as
/// Pillow builds it (angle mod 360, radians, rounded to 15 decimals, the centre folded in), then its nearest-neighbour
/// engine, which walks the output in 16.16 fixed point. Computing the same map in doubles picked a neighbouring source
/// pixel for about one output pixel in a hundred; this picks Pillow's.
/// </summary>
public readonly struct PilRotation
{
    readonly int a0, a1, a2, a3, a4, a5;

    PilRotation(double[] m)
    {
        a0 = Fix(m[0]); a1 = Fix(m[1]); a3 = Fix(m[3]); a4 = Fix(m[4]);
        a2 = Fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
        a5 = Fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
    }

    public static PilRotation For(double degrees, int width, int height) => new(Matrix(degrees, width, height));

    /// <summary>Pillow's reverse affine matrix (a, b, c, d, e, f): source = (a x + b y + c, d x + e y + f).</summary>
    public static double[] Matrix(double degrees, int width, int height)
    {
        double turned = degrees % 360.0;
        if (turned < 0) turned += 360.0;                 // Python's float modulo takes the divisor's sign
        double angle = -(turned * (Math.PI / 180.0));    // math.radians
        double cos = Math.Round(Math.Cos(angle), 15), sin = Math.Round(Math.Sin(angle), 15);
        double cx = width / 2.0, cy = height / 2.0;
        var m = new[] { cos, sin, 0.0, -sin, cos, 0.0 };
        m[2] = m[0] * -cx + m[1] * -cy + 0.0 + cx;
        m[5] = m[3] * -cx + m[4] * -cy + 0.0 + cy;
        return m;
    }

    static int Fix(double v)
    {
        double t = v * 65536.0 + 0.5;
        return t < 0 ? (int)Math.Floor(t) : (int)t;
    }

    /// <summary>
    /// The fixed-point map (a0..a5): output pixel (x, y) reads source pixel ((a2 + y a1 + x a0) &gt;&gt; 16,
    /// (a5 + y a4 + x a3) &gt;&gt; 16), in 32-bit integers; outside the image means the black fill. Walked per row by
    /// <see cref="ImageOps.RotateCropFlip(RgbImage, int, int, int, int, AugmentParams, int, float[][], Span{float})"/>,
    /// for a whole batch by <see cref="GatherCache"/>.
    /// </summary>
    public int[] Coefficients => [a0, a1, a2, a3, a4, a5];
}
