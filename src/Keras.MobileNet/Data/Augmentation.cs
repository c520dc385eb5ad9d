namespace Keras.MobileNet.Data;

/// <summary>
/// A counter-based random stream: the numbers for (seed, epoch, index) are a pure function of those three, so
/// batches are identical whatever the worker count, order of work, or resume point.
/// </summary>
public struct CounterRng
{
    ulong state;

    public CounterRng(long seed, long epoch, long index) =>
        state = Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)epoch + 0x632BE59BD9B4E019UL) ^ Mix(~(ulong)index * 0xD1B54A32D192ED03UL));

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>SplitMix64 step.</summary>
    public ulong Next() => Mix(state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n) (Lemire's multiply-shift, bias below 2^-64 * n).</summary>
    public int NextInt(int n) => n <= 0 ? throw new ArgumentOutOfRangeException(nameof(n)) : (int)((UInt128)Next() * (ulong)n >> 64);

    /// <summary>Fisher-Yates permutation of 0..n-1 for (seed, epoch): the shuffled order of an epoch.</summary>
    public static int[] Permutation(long seed, long epoch, int n)
    {
        var rng = new CounterRng(seed, epoch, -1);
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}

/// <summary>The sizes of the notebook's transforms, all derived from one image size (224 gives the notebook's).</summary>
public sealed record TransformConfig(int ImageSize, IReadOnlyList<int> TrainResizes, int ValResize, float[] Mean, float[] Std,
    double MaxRotationDegrees = 10)
{
    public static readonly float[] ImagenetteMean = [0.4625f, 0.4580f, 0.4295f];
    public static readonly float[] ImagenetteStd = [0.2452f, 0.2390f, 0.2469f];

    /// <summary>RandomResize([256, 296, 384]) and Resize(256) at 224, scaled with the image size.</summary>
    public static TransformConfig For(int imageSize, float[]? mean = null, float[]? std = null)
    {
        if (imageSize < Architecture.MobileNetV2Spec.MinImageSize)
            throw new ArgumentException($"--image-size must be at least {Architecture.MobileNetV2Spec.MinImageSize}, not {imageSize}");
        int Scale(int s) => (int)Math.Round(s * imageSize / 224.0, MidpointRounding.AwayFromZero);
        mean ??= ImagenetteMean;
        std ??= ImagenetteStd;
        if (mean.Length != 3 || std.Length != 3 || std.Any(s => !(s > 0)))
            throw new ArgumentException("mean and std need three values each, std > 0");
        return new TransformConfig(imageSize, [Scale(256), Scale(296), Scale(384)], Scale(256), mean, std);
    }
}

/// <summary>Every random choice of the train transform for one sample.</summary>
public readonly record struct AugmentParams(int ResizeShort, double AngleDegrees, int Top, int Left, bool Flip);

/// <summary>Pure geometry of torchvision's transforms.</summary>
public static class Geometry
{
    /// <summary>Resize(int): the shorter side becomes <paramref name="size"/>, the other int(size * long / short).</summary>
    public static (int Width, int Height) ResizeShorter(int width, int height, int size) =>
        width <= height
            ? (size, (int)((double)size * height / width))
            : ((int)((double)size * width / height), size);

    /// <summary>CenterCrop: top = round((h - crop) / 2), left likewise, Python's round (half to even).</summary>
    public static (int Top, int Left) CenterCrop(int width, int height, int crop) =>
        ((int)Math.Round((height - crop) / 2.0, MidpointRounding.ToEven), (int)Math.Round((width - crop) / 2.0, MidpointRounding.ToEven));

    /// <summary>
    /// The train transform's choices for sample <paramref name="index"/> of <paramref name="epoch"/>:
    /// RandomResize size, RandomRotation angle in [-max, max], RandomCrop offsets over all valid positions,
    /// RandomHorizontalFlip with p = 0.5.
    /// </summary>
    public static AugmentParams Sample(TransformConfig cfg, long seed, long epoch, long index, int width, int height)
    {
        var rng = new CounterRng(seed, epoch, index);
        int size = cfg.TrainResizes[rng.NextInt(cfg.TrainResizes.Count)];
        double angle = (rng.NextDouble() * 2 - 1) * cfg.MaxRotationDegrees;
        var (w, h) = ResizeShorter(width, height, size);
        if (w < cfg.ImageSize || h < cfg.ImageSize)
            throw new InvalidOperationException($"resized image {w}x{h} is smaller than the crop {cfg.ImageSize}");
        int top = rng.NextInt(h - cfg.ImageSize + 1);
        int left = rng.NextInt(w - cfg.ImageSize + 1);
        bool flip = rng.NextDouble() < 0.5;
        return new AugmentParams(size, angle, top, left, flip);
    }
}
