using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Data;

/// <summary>
/// The train images of an in-memory dataset at their three RandomResize sizes (<see cref="PreResizedTrainTransform"/>),
/// packed back to back into one uint8 tensor on a device, and the rest of the train transform for a whole batch as a
/// few tensor operations there: each sample's choices (<see cref="Geometry.Sample"/>, unchanged) become integer index
/// maps (output pixel -> flip -> crop -> Pillow's 16.16 fixed-point rotation walk, in int32 as <see cref="PilRotation"/>
/// computes it), one gather from the cache (black outside the image) and one from the normalisation table. On the CPU
/// device the floats are today's byte for byte (<c>GatherTests</c>); on a GPU the batch never crosses the host.
/// </summary>
public sealed class GatherCache : IDisposable
{
    const int Fields = 11; // a0..a5, left, top, flip, width, height
    readonly TransformConfig cfg;
    readonly Tensor pixels, lut;
    readonly long[] offsets;     // per image and size: where its HWC bytes start in pixels
    readonly int[] sizes;        // per image and size: width, height
    readonly int[] decodedSizes; // per image: the decoded width, height (the random choices are drawn from them)

    public Device Device { get; }
    public long Bytes { get; }
    public int Count { get; }
    /// <summary>Batches come as NCHW with channels-last strides (what a channels-last model reads without a copy).</summary>
    public bool ChannelsLast { get; init; }

    /// <summary>
    /// The batches' element type: float32, or bfloat16 for a bf16 network (its first convolution casts its input to
    /// bf16 anyway, so the values it computes with are the same; the gather moves half the bytes).
    /// </summary>
    public ScalarType OutputType { get; }

    GatherCache(TransformConfig cfg, Tensor pixels, long[] offsets, int[] sizes, int[] decodedSizes, Device device, ScalarType outputType)
    {
        if (outputType is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException($"the gather makes float32 or bfloat16 batches, not {outputType}", nameof(outputType));
        (this.cfg, this.pixels, this.offsets, this.sizes, this.decodedSizes, Device, OutputType) = (cfg, pixels, offsets, sizes, decodedSizes, device, outputType);
        (Bytes, Count) = (pixels.shape[0], decodedSizes.Length / 2);
        using var table = tensor(ImageOps.NormalizeTable(cfg.Mean, cfg.Std).SelectMany(c => c).ToArray(), ScalarType.Float32);
        lut = table.to(outputType).to(device);
    }

    /// <summary>The bytes the cache of <paramref name="dataset"/> takes (its images at their three sizes).</summary>
    public static long BytesFor(IImageDataset dataset) => Layout(dataset, Require(dataset).Config.TrainResizes.Count).Total;

    /// <summary>
    /// Where each image's copies go in the packed tensor: per image and size, the offset of its HWC bytes and its width
    /// and height; per image, the decoded width and height; and the bytes of all of them.
    /// </summary>
    static (long[] Offsets, int[] Sizes, int[] DecodedSizes, long Total) Layout(IImageDataset dataset, int k)
    {
        int n = dataset.Count;
        var (offsets, sizes, decodedSizes) = (new long[n * k], new int[2 * n * k], new int[2 * n]);
        long total = 0;
        for (int i = 0; i < n; i++)
        {
            var img = Of(dataset, i);
            (decodedSizes[2 * i], decodedSizes[2 * i + 1]) = (img.Width, img.Height);
            for (int s = 0; s < k; s++)
            {
                var r = img.Resized![s];
                (offsets[i * k + s], sizes[2 * (i * k + s)], sizes[2 * (i * k + s) + 1]) = (total, r.Width, r.Height);
                total += r.Pixels.LongLength;
            }
        }
        return (offsets, sizes, decodedSizes, total);
    }

    /// <summary>Packs the images of <paramref name="dataset"/> (built with the pre-resized train transform) on <paramref name="device"/>.</summary>
    public static GatherCache Build(IImageDataset dataset, Device device, bool channelsLast = false, ScalarType outputType = ScalarType.Float32)
    {
        var cfg = Require(dataset).Config;
        int n = dataset.Count, k = cfg.TrainResizes.Count;
        var (offsets, sizes, decodedSizes, total) = Layout(dataset, k);
        var pixels = empty(total, ScalarType.Byte, device);
        try
        {
            for (int i = 0; i < n; i++)
            {
                var img = Of(dataset, i);
                for (int s = 0; s < k; s++)
                {
                    var r = img.Resized![s];
                    using var src = tensor(r.Pixels, ScalarType.Byte);
                    using var dst = pixels.narrow(0, offsets[i * k + s], r.Pixels.LongLength);
                    dst.copy_(src);
                }
            }
        }
        catch { pixels.Dispose(); throw; }
        return new GatherCache(cfg, pixels, offsets, sizes, decodedSizes, device, outputType) { ChannelsLast = channelsLast };
    }

    static PreResizedTrainTransform Require(IImageDataset dataset) =>
        dataset.Transform as PreResizedTrainTransform
        ?? throw new ArgumentException("the batched gather needs a dataset prepared with the pre-resized train transform (--train-cache resized)", nameof(dataset));

    static RgbImage Of(IImageDataset dataset, int index) =>
        dataset.Prepared(index) ?? throw new InvalidOperationException($"image {index} of the in-memory dataset cannot be read");

    /// <summary>
    /// The normalized images of dataset samples <paramref name="indices"/> for (seed, epoch): NCHW on <see cref="Device"/>
    /// in <see cref="OutputType"/>, equal to what <see cref="PreResizedTrainTransform.Finish"/> writes for each (cast).
    /// </summary>
    public Tensor Images(long seed, long epoch, ReadOnlySpan<int> indices)
    {
        int n = indices.Length, size = cfg.ImageSize, k = cfg.TrainResizes.Count;
        var fields = new int[n * Fields];
        var starts = new long[n];
        for (int i = 0; i < n; i++)
        {
            int idx = indices[i];
            var p = Geometry.Sample(cfg, seed, epoch, idx, decodedSizes[2 * idx], decodedSizes[2 * idx + 1]);
            int j = idx * k + PreResizedTrainTransform.IndexOf(cfg.TrainResizes, p.ResizeShort);
            int w = sizes[2 * j], h = sizes[2 * j + 1];
            PilRotation.For(p.AngleDegrees, w, h).Coefficients.CopyTo(fields, i * Fields);
            (fields[i * Fields + 6], fields[i * Fields + 7], fields[i * Fields + 8]) = (p.Left, p.Top, p.Flip ? 1 : 0);
            (fields[i * Fields + 9], fields[i * Fields + 10]) = (w, h);
            starts[i] = offsets[j];
        }
        using var scope = NewDisposeScope();
        var f = tensor(fields, ScalarType.Int32).view(n, Fields).to(Device);
        Tensor Field(int c) => f.select(1, c).view(n, 1, 1);
        var xs = arange(size, ScalarType.Int32, Device).view(1, 1, size);
        var ys = arange(size, ScalarType.Int32, Device).view(1, size, 1);
        var x = Field(6) + xs + Field(8) * (size - 1 - 2 * xs); // the crop's column: flipped, output column x shows size - 1 - x
        var y = Field(7) + ys;
        using var sixteen = tensor(16, ScalarType.Int32, Device);
        var sx = (Field(2) + y * Field(1) + x * Field(0)).bitwise_right_shift(sixteen); // Pillow's walk, 32-bit integers
        var sy = (Field(5) + y * Field(4) + x * Field(3)).bitwise_right_shift(sixteen);
        var (width, height) = (Field(9), Field(10));
        var inside = (sx.ge(0) & sy.ge(0) & sx.lt(width) & sy.lt(height)).to(ScalarType.Int32);
        var pixel = ((sy * inside) * width + sx * inside).to(ScalarType.Int64) * 3 + tensor(starts, ScalarType.Int64).to(Device).view(n, 1, 1);
        var rgb = pixels.take(pixel.unsqueeze(-1) + arange(3, ScalarType.Int64, Device)) * inside.unsqueeze(-1).to(ScalarType.Byte);
        var floats = lut.take(rgb.to(ScalarType.Int64) + arange(0, 768, 256, ScalarType.Int64, Device)); // N, H, W, C
        var images = floats.permute(0, 3, 1, 2);
        return (ChannelsLast ? images : images.contiguous()).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        pixels.Dispose();
        lut.Dispose();
    }
}
