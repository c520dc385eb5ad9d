namespace Keras.MobileNet.Data;

public static partial class ImageOps
{
    /// <summary>
    /// Bilinear resize with antialiasing, exactly as Pillow computes it for torchvision's Resize on PIL images
    /// (see <see cref="PilResize"/>). Measured faster than ImageSharp's Triangle resampler on this machine kind.
    /// </summary>
    public static RgbImage Resize(RgbImage src, int width, int height) =>
        src.Width == width && src.Height == height ? src
            : new RgbImage(width, height, PilResize.Resize(src.Pixels, src.Width, src.Height, width, height));

    public static RgbImage Crop(RgbImage src, int top, int left, int size)
    {
        var pixels = new byte[size * size * 3];
        for (int y = 0; y < size; y++)
            Buffer.BlockCopy(src.Pixels, ((top + y) * src.Width + left) * 3, pixels, y * size * 3, size * 3);
        return new RgbImage(size, size, pixels);
    }

    /// <summary>ToTensor then Normalize as torchvision computes them in float32: (v / 255 - mean) / std.</summary>
    public static float[][] NormalizeTable(float[] mean, float[] std)
    {
        var lut = new float[3][];
        for (int c = 0; c < 3; c++)
        {
            lut[c] = new float[256];
            for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255f - mean[c]) / std[c];
        }
        return lut;
    }

    /// <summary>Writes an RGB image of exactly size x size into CHW floats, normalized.</summary>
    public static void ToChw(RgbImage img, float[][] lut, Span<float> dest)
    {
        int plane = img.Width * img.Height;
        if (dest.Length != 3 * plane) throw new ArgumentException("destination does not match the image");
        var px = img.Pixels;
        var (r, g, b) = (lut[0], lut[1], lut[2]);
        for (int i = 0; i < plane; i++)
        {
            dest[i] = r[px[3 * i]];
            dest[plane + i] = g[px[3 * i + 1]];
            dest[2 * plane + i] = b[px[3 * i + 2]];
        }
    }

    /// <summary>
    /// RandomRotation (nearest, about the centre, canvas kept, black fill), RandomCrop and RandomHorizontalFlip,
    /// then ToTensor + Normalize, fused into one pass over the output pixels. The source pixel of each output pixel is
    /// the one Pillow's rotate picks (<see cref="PilRotation"/>: its matrix and its 16.16 fixed-point walk), so the
    /// bytes are torchvision's. <paramref name="window"/> holds the pixels of the resized image (of
    /// <paramref name="fullWidth"/> x <paramref name="fullHeight"/>) from (<paramref name="windowX"/>, <paramref name="windowY"/>) on.
    /// </summary>
    public static unsafe void RotateCropFlip(RgbImage window, int windowX, int windowY, int fullWidth, int fullHeight, AugmentParams p, int size,
        float[][] lut, Span<float> dest)
    {
        int w = fullWidth, h = fullHeight, plane = size * size, ww = window.Width;
        if (dest.Length != 3 * plane) throw new ArgumentException("destination does not match the crop");
        var a = PilRotation.For(p.AngleDegrees, w, h).Coefficients;
        // Output column x shows crop column xo (size - 1 - x when flipped), at image column Left + xo. Pillow's source
        // position (a2 + Y a1 + X a0, a5 + Y a4 + X a3) in 16.16 fixed point then moves by +-(a0, a3) per output column:
        // the same 32-bit sums (wrapping alike), one addition each instead of two products.
        int step = p.Flip ? -1 : 1, firstX = p.Flip ? p.Left + size - 1 : p.Left;
        int du = step * a[0], dv = step * a[3];
        fixed (byte* px = window.Pixels)
        fixed (float* d = dest, lr = lut[0], lg = lut[1], lb = lut[2])
        {
            for (int y = 0; y < size; y++)
            {
                int row = p.Top + y;
                int u = a[2] + row * a[1] + firstX * a[0], v = a[5] + row * a[4] + firstX * a[3];
                float* r = d + y * size, g = r + plane, b = g + plane;
                for (int x = 0; x < size; x++, u += du, v += dv)
                {
                    int sx = u >> 16, sy = v >> 16;
                    if ((uint)sx >= (uint)w || (uint)sy >= (uint)h)
                    {
                        r[x] = lr[0]; g[x] = lg[0]; b[x] = lb[0];
                        continue;
                    }
                    byte* s = px + ((sy - windowY) * ww + (sx - windowX)) * 3;
                    r[x] = lr[s[0]];
                    g[x] = lg[s[1]];
                    b[x] = lb[s[2]];
                }
            }
        }
    }

    public static void RotateCropFlip(RgbImage resized, AugmentParams p, int size, float[][] lut, Span<float> dest) =>
        RotateCropFlip(resized, 0, 0, resized.Width, resized.Height, p, size, lut, dest);

    /// <summary>
    /// PIL's inverse rotation: the source position of the output point at (dx, dy) from the centre (cx, cy). Shared by
    /// the sampling and by <see cref="SourceWindow"/>, so the window always holds every pixel the sampling reads.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static (double X, double Y) MapBack(double cos, double sin, double cx, double cy, double dx, double dy) =>
        (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);

    static (double Cos, double Sin) Rotation(double degrees)
    {
        var m = PilRotation.Matrix(degrees, 0, 0);
        return (m[0], m[1]);
    }

    /// <summary>
    /// The part of the resized image the rotated crop can read: the bounding box of the crop's corners mapped back,
    /// one pixel of margin, clipped to the image. Returns (x, y, width, height).
    /// </summary>
    public static (int X, int Y, int Width, int Height) SourceWindow(int fullWidth, int fullHeight, AugmentParams p, int size)
    {
        var (cos, sin) = Rotation(p.AngleDegrees);
        double cx = fullWidth / 2.0, cy = fullHeight / 2.0;
        double minX = double.MaxValue, maxX = double.MinValue, minY = double.MaxValue, maxY = double.MinValue;
        foreach (var (ox, oy) in new[] { (0.0, 0.0), (size, 0.0), (0.0, size), (size, (double)size) })
        {
            var (sx, sy) = MapBack(cos, sin, cx, cy, p.Left + ox - cx, p.Top + oy - cy);
            (minX, maxX, minY, maxY) = (Math.Min(minX, sx), Math.Max(maxX, sx), Math.Min(minY, sy), Math.Max(maxY, sy));
        }
        int x0 = Math.Clamp((int)Math.Floor(minX) - 1, 0, fullWidth - 1), y0 = Math.Clamp((int)Math.Floor(minY) - 1, 0, fullHeight - 1);
        int x1 = Math.Clamp((int)Math.Floor(maxX) + 2, x0 + 1, fullWidth), y1 = Math.Clamp((int)Math.Floor(maxY) + 2, y0 + 1, fullHeight);
        return (x0, y0, x1 - x0, y1 - y0);
    }
}
