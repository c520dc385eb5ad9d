using SkiaSharp;

namespace Keras.MobileNet.Data;

/// <summary>A decoded image: interleaved RGB bytes, row-major. The compact in-memory form.</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public long Bytes => Pixels.LongLength;
}

public sealed class BadImageException(string path, string why) : Exception($"{path}: {why}")
{
    public string Path { get; } = path;
    public string Why { get; } = why;
}

/// <summary>Decoding (SkiaSharp's codecs) and the pixel work of the transforms (resize: <see cref="PilResize"/>).</summary>
public static class ImageOps
{
    public const long DefaultMaxPixels = 50_000_000;

    /// <summary>
    /// Decodes the first frame of a JPEG or PNG to RGB, as Pillow's <c>Image.open(f).convert("RGB")</c> does (what
    /// torchvision's ImageFolder feeds its transforms): alpha dropped, grey replicated, no colour management. The
    /// format is judged by the content, not the name; the header is read first, and an image of more than
    /// <paramref name="maxPixels"/> pixels is refused before any pixel is decoded. Skia, not ImageSharp: Skia's JPEG
    /// decoder is libjpeg-turbo, Pillow's own, and gives Pillow's bytes exactly where ImageSharp's differs by up to 120
    /// levels at chroma edges (DataTests.Decoding_equals_Pillow_byte_for_byte), and it decodes 2.5x faster
    /// (<c>bench pipeline</c>). Anything unreadable is a <see cref="BadImageException"/>.
    /// </summary>
    public static RgbImage Decode(byte[] data, string path, long maxPixels = DefaultMaxPixels)
    {
        if (data.Length == 0) throw new BadImageException(path, "empty file");
        using var native = SKData.CreateCopy(data); // Skia reads native memory directly; a managed stream costs 2x in callbacks
        using var codec = Open(SKCodec.Create(new SKMemoryStream(native), out var result), result, path, maxPixels);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        // A pooled buffer: a fresh large array per image (zeroed, on the large-object heap) cost 15% of the decode.
        var rgba = System.Buffers.ArrayPool<byte>.Shared.Rent(checked((int)info.BytesSize64));
        try
        {
            var decoded = Decode(codec, info, rgba);
            if (decoded != SKCodecResult.Success)
                throw new BadImageException(path, decoded == SKCodecResult.IncompleteInput ? "truncated image data" : $"cannot be decoded ({decoded})");
            var pixels = new byte[(long)info.Width * info.Height * 3];
            for (long i = 0, j = 0; i < pixels.LongLength; i += 3, j += 4)
            {
                pixels[i] = rgba[j];
                pixels[i + 1] = rgba[j + 1];
                pixels[i + 2] = rgba[j + 2];
            }
            return new RgbImage(info.Width, info.Height, pixels);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(rgba); }
    }

    static unsafe SKCodecResult Decode(SKCodec codec, SKImageInfo info, byte[] rgba)
    {
        fixed (byte* p = rgba) return codec.GetPixels(info, (IntPtr)p, new SKCodecOptions(0)); // the first frame only
    }

    /// <summary>Reads only the header: formats other than JPEG and PNG, and images over the pixel limit, are refused here.</summary>
    public static (int Width, int Height) CheckHeader(Stream stream, string path, long maxPixels = DefaultMaxPixels)
    {
        if (stream.CanSeek && stream.Length == 0) throw new BadImageException(path, "empty file");
        using var codec = Open(SKCodec.Create(new SKManagedStream(stream, disposeManagedStream: false), out var result), result, path, maxPixels);
        return (codec.Info.Width, codec.Info.Height);
    }

    static SKCodec Open(SKCodec? created, SKCodecResult result, string path, long maxPixels)
    {
        var codec = created
            ?? throw new BadImageException(path, result == SKCodecResult.IncompleteInput
                ? "truncated image header" : "not a JPEG or PNG image");
        try
        {
            if (codec.EncodedFormat is not (SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Png))
                throw new BadImageException(path, $"{codec.EncodedFormat.ToString().ToUpperInvariant()} content; only JPEG and PNG images are read");
            var (w, h) = (codec.Info.Width, codec.Info.Height);
            if (w <= 0 || h <= 0) throw new BadImageException(path, $"{w}x{h} is not an image size");
            if ((long)w * h > maxPixels)
                throw new BadImageException(path, $"{w}x{h} is more than the {maxPixels:N0}-pixel limit");
            return codec;
        }
        catch
        {
            codec.Dispose();
            throw;
        }
    }

    public static RgbImage DecodeFile(string path, long maxPixels = DefaultMaxPixels) => Decode(File.ReadAllBytes(path), path, maxPixels);

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
    public static void RotateCropFlip(RgbImage window, int windowX, int windowY, int fullWidth, int fullHeight, AugmentParams p, int size,
        float[][] lut, Span<float> dest)
    {
        int w = fullWidth, h = fullHeight, plane = size * size, ww = window.Width;
        if (dest.Length != 3 * plane) throw new ArgumentException("destination does not match the crop");
        var rot = PilRotation.For(p.AngleDegrees, w, h);
        var px = window.Pixels;
        var (lr, lg, lb) = (lut[0], lut[1], lut[2]);
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int xo = p.Flip ? size - 1 - x : x;        // flip the crop: output column x shows crop column xo
                var (sx, sy) = rot.Source(p.Left + xo, p.Top + y);
                int o = y * size + x;
                if (sx < 0 || sy < 0 || sx >= w || sy >= h)
                {
                    dest[o] = lr[0]; dest[plane + o] = lg[0]; dest[2 * plane + o] = lb[0];
                    continue;
                }
                int s = ((sy - windowY) * ww + (sx - windowX)) * 3;
                dest[o] = lr[px[s]];
                dest[plane + o] = lg[px[s + 1]];
                dest[2 * plane + o] = lb[px[s + 2]];
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

    /// <summary>The source pixel of output pixel (x, y); outside the image means the black fill.</summary>
    public (int X, int Y) Source(int x, int y) => ((a2 + y * a1 + x * a0) >> 16, (a5 + y * a4 + x * a3) >> 16);
}
