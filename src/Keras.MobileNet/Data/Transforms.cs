namespace Keras.MobileNet.Data;

/// <summary>
/// A transform in two stages: a deterministic <see cref="Prepare"/> (what an in-memory cache may keep) and a
/// per-sample <see cref="Finish"/> that writes normalized CHW floats.
/// </summary>
public interface IImageTransform
{
    int OutputSize { get; }
    RgbImage Prepare(RgbImage decoded);
    void Finish(RgbImage prepared, long seed, long epoch, long index, Span<float> dest);
}

/// <summary>The notebook's train transform: RandomResize -> RandomRotation -> RandomCrop -> RandomHorizontalFlip -> Normalize.</summary>
public sealed class TrainTransform(TransformConfig cfg) : IImageTransform
{
    readonly float[][] lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
    public int OutputSize => cfg.ImageSize;
    public RgbImage Prepare(RgbImage decoded) => decoded;

    public void Finish(RgbImage img, long seed, long epoch, long index, Span<float> dest) =>
        Apply(img, Geometry.Sample(cfg, seed, epoch, index, img.Width, img.Height), dest);

    /// <summary>The transform with its random choices given: resize, rotate, crop, flip, normalize.</summary>
    public void Apply(RgbImage img, AugmentParams p, Span<float> dest)
    {
        var (w, h) = Geometry.ResizeShorter(img.Width, img.Height, p.ResizeShort);
        // Resize only the window the rotated crop reads: the same pixels, a fraction of the work.
        var (x, y, ww, wh) = ImageOps.SourceWindow(w, h, p, cfg.ImageSize);
        var window = new RgbImage(ww, wh, PilResize.Resize(img.Pixels, img.Width, img.Height, w, h, x, y, ww, wh));
        ImageOps.RotateCropFlip(window, x, y, w, h, p, cfg.ImageSize, lut, dest);
    }
}

/// <summary>
/// The notebook's train transform with its resize done once: <see cref="Prepare"/> keeps the decoded image at each of
/// the three RandomResize sizes (Pillow-exact, the same code), and <see cref="Finish"/> draws the same choices from the
/// same seed as <see cref="TrainTransform"/> and rotates, crops, flips and normalizes the chosen size: the same floats,
/// byte for byte, without a resize per sample. For an in-memory dataset (the prepared image is kept): about 2.3x the
/// decoded image's memory at 224 px (the three sizes together), for several times the speed (<c>bench pipeline</c>).
/// </summary>
public sealed class PreResizedTrainTransform(TransformConfig cfg) : IImageTransform
{
    readonly float[][] lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
    public int OutputSize => cfg.ImageSize;
    public TransformConfig Config => cfg;

    public RgbImage Prepare(RgbImage decoded) => new(decoded.Width, decoded.Height, [])
    {
        Resized = [.. Sizes(decoded.Width, decoded.Height).Select(s => ImageOps.Resize(decoded, s.Width, s.Height))],
    };

    /// <summary>The image's size at each RandomResize target, in the transform's order.</summary>
    IEnumerable<(int Width, int Height)> Sizes(int width, int height) => cfg.TrainResizes.Select(s => Geometry.ResizeShorter(width, height, s));

    public void Finish(RgbImage img, long seed, long epoch, long index, Span<float> dest)
    {
        var resized = img.Resized ?? throw new ArgumentException("not an image this transform prepared", nameof(img));
        var p = Geometry.Sample(cfg, seed, epoch, index, img.Width, img.Height);
        int which = IndexOf(cfg.TrainResizes, p.ResizeShort);
        ImageOps.RotateCropFlip(resized[which], p, cfg.ImageSize, lut, dest);
    }

    internal static int IndexOf(IReadOnlyList<int> sizes, int size)
    {
        for (int i = 0; i < sizes.Count; i++) if (sizes[i] == size) return i;
        throw new InvalidOperationException($"resize {size} is not one of the transform's sizes");
    }

    /// <summary>The bytes one image of <paramref name="width"/> x <paramref name="height"/> takes once prepared.</summary>
    public long BytesFor(int width, int height) => Sizes(width, height).Sum(s => 3L * s.Width * s.Height);
}

/// <summary>The notebook's val transform: Resize(256) -> CenterCrop(224) -> Normalize. All of it is deterministic.</summary>
public sealed class ValTransform(TransformConfig cfg) : IImageTransform
{
    readonly float[][] lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
    public int OutputSize => cfg.ImageSize;

    public RgbImage Prepare(RgbImage decoded)
    {
        var (w, h) = Geometry.ResizeShorter(decoded.Width, decoded.Height, cfg.ValResize);
        var (top, left) = Geometry.CenterCrop(w, h, cfg.ImageSize);
        return ImageOps.Crop(ImageOps.Resize(decoded, w, h), top, left, cfg.ImageSize);
    }

    public void Finish(RgbImage prepared, long seed, long epoch, long index, Span<float> dest) =>
        ImageOps.ToChw(prepared, lut, dest);
}
