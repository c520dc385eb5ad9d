using SkiaSharp;

namespace Keras.MobileNet.Data;

/// <summary>A decoded image: interleaved RGB bytes, row-major. The compact in-memory form.</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>
    /// A train image prepared once (<see cref="PreResizedTrainTransform"/>): the same image at each of the train
    /// transform's RandomResize sizes, in their order. Width and Height stay the decoded image's (the random choices
    /// are drawn from them); Pixels is then empty.
    /// </summary>
    public IReadOnlyList<RgbImage>? Resized { get; init; }

    public long Bytes => Pixels.LongLength + (Resized?.Sum(r => r.Bytes) ?? 0);
}

public sealed class BadImageException(string path, string why) : Exception($"{path}: {why}")
{
    public string Path { get; } = path;
    public string Why { get; } = why;
}

/// <summary>Decoding (SkiaSharp's codecs) and the pixel work of the transforms (resize: <see cref="PilResize"/>).</summary>
public static partial class ImageOps
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
        // Large images decode one at a time: each needs an RGBA buffer beside its RGB copy (7000x7000: 196 + 147 MB),
        // and parallel workers decoding several at once set the process's peak, not the dataset.
        bool large = (long)info.Width * info.Height > LargeImagePixels;
        if (!large) return Decode(codec, info, path, large);
        LargeDecodes.Wait();
        try
        {
            // Their buffers are large-object-heap arrays, which the GC frees only in a full collection, and that it may put
            // off for gigabytes of them: one is run after each 512 MB of large decodes (training on eight 49-MP PNGs
            // peaked at 1.5-2.3 GB from run to run without it; tools/memory-check.sh).
            largeBytesSinceCollect += (long)info.Width * info.Height * 7; // the RGBA buffer and the RGB image
            if (largeBytesSinceCollect > CollectAfterLargeBytes)
            {
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                largeBytesSinceCollect = 0;
            }
            return Decode(codec, info, path, large);
        }
        finally { LargeDecodes.Release(); }
    }

    const long CollectAfterLargeBytes = 512L << 20;
    static long largeBytesSinceCollect; // under LargeDecodes

    /// <summary>Images above this many pixels are decoded one at a time.</summary>
    public const long LargeImagePixels = 8_000_000;
    static readonly SemaphoreSlim LargeDecodes = new(1, 1);

    static RgbImage Decode(SKCodec codec, SKImageInfo info, string path, bool large)
    {
        if (large && DecodeByRows(codec, info, path) is { } rows) return rows;
        // A pooled buffer: a fresh large array per image (zeroed, on the large-object heap) cost 15% of the decode. Not for
        // large images: the pool would keep a buffer of hundreds of megabytes for the life of the process.
        var rgba = large ? new byte[info.BytesSize64] : System.Buffers.ArrayPool<byte>.Shared.Rent(checked((int)info.BytesSize64));
        try
        {
            var decoded = Decode(codec, info, rgba);
            if (decoded != SKCodecResult.Success)
                throw new BadImageException(path, decoded == SKCodecResult.IncompleteInput ? "truncated image data" : $"cannot be decoded ({decoded})");
            var pixels = new byte[(long)info.Width * info.Height * 3];
            DropAlpha(rgba, pixels, info.Width * info.Height);
            return new RgbImage(info.Width, info.Height, pixels);
        }
        finally { if (!large) System.Buffers.ArrayPool<byte>.Shared.Return(rgba); }
    }

    /// <summary>The RGB bytes of the first <paramref name="count"/> RGBA pixels: alpha dropped, as Pillow's convert("RGB").</summary>
    static void DropAlpha(ReadOnlySpan<byte> rgba, Span<byte> rgb, int count)
    {
        for (int i = 0, j = 0; i < count * 3; i += 3, j += 4)
        {
            rgb[i] = rgba[j];
            rgb[i + 1] = rgba[j + 1];
            rgb[i + 2] = rgba[j + 2];
        }
    }

    /// <summary>
    /// A large image decoded a band of rows at a time into its RGB array: no RGBA copy of the whole image (for 49 MP,
    /// 196 MB less at the peak). Null where the codec cannot give rows top-down (then the whole-image path decodes it).
    /// </summary>
    static unsafe RgbImage? DecodeByRows(SKCodec codec, SKImageInfo info, string path)
    {
        if (codec.StartScanlineDecode(info) != SKCodecResult.Success || codec.ScanlineOrder != SKCodecScanlineOrder.TopDown) return null;
        const int band = 64;
        var pixels = new byte[(long)info.Width * info.Height * 3];
        var rgba = new byte[info.RowBytes * band];
        for (int y = 0; y < info.Height; y += band)
        {
            int rows = Math.Min(band, info.Height - y);
            int got;
            fixed (byte* p = rgba) got = codec.GetScanlines((IntPtr)p, rows, info.RowBytes);
            if (got != rows) throw new BadImageException(path, "truncated image data");
            for (int r = 0; r < rows; r++)
                DropAlpha(rgba.AsSpan(r * info.RowBytes), pixels.AsSpan((y + r) * info.Width * 3), info.Width);
        }
        return new RgbImage(info.Width, info.Height, pixels);
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

    public static RgbImage DecodeFile(string path, long maxPixels = DefaultMaxPixels) => Decode(ReadFile(path), path, maxPixels);

    /// <summary>An image file's bytes, after <see cref="CheckFile"/>.</summary>
    public static byte[] ReadFile(string path)
    {
        CheckFile(path);
        return File.ReadAllBytes(path);
    }

    /// <summary>The most bytes one image file may have (a 50-megapixel PNG without compression is 150 MB).</summary>
    public const long MaxFileBytes = 256L << 20;

    /// <summary>
    /// Only regular files of at most <see cref="MaxFileBytes"/> are read as images: a link to /dev/zero would never end and
    /// a FIFO would block. Anything else is a <see cref="BadImageException"/> before a byte is read.
    /// </summary>
    public static void CheckFile(string path)
    {
        var (kind, size) = Backend.FileKind.Stat(path);
        if (kind == Backend.PathKind.Missing) throw new BadImageException(path, "does not exist");
        if (kind != Backend.PathKind.Regular)
            throw new BadImageException(path, kind == Backend.PathKind.Directory ? "is a folder" : "not a regular file (a device, FIFO or socket); only regular files are read");
        if (size > MaxFileBytes) throw new BadImageException(path, $"{size:N0} bytes, over the {MaxFileBytes:N0}-byte limit for one image file");
    }
}
