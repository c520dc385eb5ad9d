using TorchSharp;

namespace Keras.MobileNet.Tests;

/// <summary>
/// The train transform's per-sample work as one batched gather over the pre-resized cache (on the CPU device here):
/// today's floats, byte for byte.
/// </summary>
public class GatherTests() : WithTempDir("km-gather-")
{
    /// <summary>A few decoded images, prepared once, as an in-memory dataset.</summary>
    sealed class PreparedImages(IImageTransform transform, IReadOnlyList<RgbImage> decoded) : IImageDataset
    {
        readonly RgbImage[] prepared = [.. decoded.Select(transform.Prepare)];
        public int Count => prepared.Length;
        public IReadOnlyList<string> Classes => ["a", "b"];
        public IImageTransform Transform => transform;
        public int Label(int index) => index % 2;
        public RgbImage? Prepared(int index) => prepared[index];
    }

    static float[] Floats(torch.Tensor t) => t.contiguous().data<float>().ToArray();

    [TestCase(224, false)]
    [TestCase(224, true)]
    [TestCase(64, false)]
    [TestCase(32, true)]
    public void The_batched_gather_gives_todays_floats_byte_for_byte(int size, bool imagenetPreset)
    {
        // Non-square both ways, square, and a narrow one; decoded sizes that scale to odd resized sizes.
        (int W, int H)[] shapes = [(500, 375), (375, 500), (300, 300), (size + 13, 3 * size)];
        var images = shapes.Select((s, i) => ImageOps.Decode(TestData.Jpeg(s.W, s.H, size + i), "x.jpg")).ToList();
        var decoded = Enumerable.Range(0, 48).Select(i => images[i % images.Count]).ToList(); // each choice is drawn from (seed, epoch, index)
        var cfg = imagenetPreset ? TransformConfig.For(size, Pretrained.ImageNetMean, Pretrained.ImageNetStd) : TransformConfig.For(size);
        var (today, once) = (new TrainTransform(cfg), new PreResizedTrainTransform(cfg));
        var ds = new PreparedImages(once, decoded);
        using var cache = GatherCache.Build(ds, torch.CPU, channelsLast: size == 32);
        Assert.That(cache.Bytes, Is.EqualTo(GatherCache.BytesFor(ds)).And.EqualTo(decoded.Sum(d => once.BytesFor(d.Width, d.Height))));
        int per = 3 * size * size;
        var expected = new float[per];
        var seen = new List<AugmentParams>();
        foreach (long seed in new long[] { 0, 7 })
            foreach (long epoch in new long[] { 0, 3 })
            {
                // A batch of 40 samples in a shuffled order, each with its own choices.
                int[] indices = CounterRng.Permutation(seed, epoch, decoded.Count)[..40];
                using var batch = cache.Images(seed, epoch, indices);
                Assert.That(batch.shape, Is.EqualTo(new long[] { indices.Length, 3, size, size }));
                Assert.That(Model.Layouts.IsChannelsLast(batch), Is.EqualTo(size == 32), "the layout asked for");
                var got = Floats(batch);
                for (int i = 0; i < indices.Length; i++)
                {
                    int idx = indices[i];
                    today.Finish(decoded[idx], seed, epoch, idx, expected);
                    Assert.That(got.AsSpan(i * per, per).ToArray(), Is.EqualTo(expected), $"seed {seed}, epoch {epoch}, sample {i} (image {idx})");
                    seen.Add(Geometry.Sample(cfg, seed, epoch, idx, decoded[idx].Width, decoded[idx].Height));
                }
            }
        Assert.That(seen.Select(p => p.ResizeShort).Distinct().Order(), Is.EqualTo(cfg.TrainResizes.Order()), "every resize size");
        Assert.That(seen.Select(p => p.Flip).Distinct().Count(), Is.EqualTo(2), "both flips");
        Assert.That(seen.Any(p => Math.Abs(p.AngleDegrees) < 1) && seen.Any(p => p.AngleDegrees > 9) && seen.Any(p => p.AngleDegrees < -9), "angles near 0 and +-10");
    }

    [Test]
    public void A_bf16_batch_is_todays_floats_cast()
    {
        var cfg = TransformConfig.For(64);
        var once = new PreResizedTrainTransform(cfg);
        var image = ImageOps.Decode(TestData.Jpeg(150, 100, 3), "x.jpg");
        var ds = new PreparedImages(once, [.. Enumerable.Repeat(image, 12)]);
        using var f32 = GatherCache.Build(ds, torch.CPU);
        using var b16 = GatherCache.Build(ds, torch.CPU, outputType: ScalarType.BFloat16);
        int[] indices = [.. Enumerable.Range(0, 12)];
        using var want = f32.Images(3, 1, indices);
        using var got = b16.Images(3, 1, indices);
        Assert.That(got.dtype, Is.EqualTo(ScalarType.BFloat16));
        using var cast = want.to(ScalarType.BFloat16);
        Assert.That(got.contiguous().bytes.ToArray(), Is.EqualTo(cast.contiguous().bytes.ToArray()), "bit for bit");
        Assert.That(() => GatherCache.Build(ds, torch.CPU, outputType: ScalarType.Float16), Throws.ArgumentException);
    }

    [Test]
    public void The_loader_with_the_gather_serves_todays_batches_including_a_resumed_epoch()
    {
        TestData.ImageFolder(dir, ["a", "b", "c"], 7, 1, 90, 64);
        var split = ImageFolder.Scan(dir, "train");
        var cfg = TransformConfig.For(48);
        var pre = InMemoryDataset.Build(split, new PreResizedTrainTransform(cfg), new BadImageLog(), 2);
        using var cache = GatherCache.Build(pre, torch.CPU, channelsLast: true);
        var today = new DataLoader(InMemoryDataset.Build(split, new TrainTransform(cfg), new BadImageLog(), 2), 4, shuffle: true, seed: 11, workers: 2, torch.CPU);
        var gathered = new DataLoader(pre, 4, shuffle: true, seed: 11, workers: 2, torch.CPU) { Gather = cache };
        static List<(float[], long[])> Batches(DataLoader l, int epoch, int skip) =>
            l.Epoch(epoch, skip).Select(b => { using (b) return (Floats(b.Images), b.Labels.data<long>().ToArray()); }).ToList();
        foreach (int epoch in new[] { 0, 2 })
            Assert.That(Batches(gathered, epoch, 0), Is.EqualTo(Batches(today, epoch, 0)), $"epoch {epoch}");
        Assert.That(Batches(gathered, 2, 3), Is.EqualTo(Batches(today, 2, 0).Skip(3)), "resumed after 3 batches of epoch 3");
        Assert.That(Batches(gathered.WithSeed(5), 1, 0), Is.EqualTo(Batches(today.WithSeed(5), 1, 0)), "a sweep's other seed keeps the gather");
    }

    [Test]
    public void The_gather_is_chosen_by_the_options_and_refused_cleanly()
    {
        TestData.ImageFolder(dir, ["a", "b"], 4, 1, 120, 90);
        var split = ImageFolder.Scan(dir, "train");
        var cfg = TransformConfig.For(48);
        var pre = InMemoryDataset.Build(split, new PreResizedTrainTransform(cfg), new BadImageLog(), 2);
        var decoded = InMemoryDataset.Build(split, new TrainTransform(cfg), new BadImageLog(), 2);
        long bytes = GatherCache.BytesFor(pre);
        var said = new List<string>();
        var log = new LineLogger(said.Add);
        var cuda = new torch.Device(DeviceType.CUDA, 0);
        GatherCache? Pick(AugmentOn on, CacheDevice at, IImageDataset ds, torch.Device device, long free = long.MaxValue / 4, long host = long.MaxValue / 4) =>
            TrainingData.GatherFor(new TrainOptions { AugmentOn = on, CacheDevice = at }, ds, device, log, free, host);

        Assert.That(Pick(AugmentOn.Auto, CacheDevice.Auto, pre, torch.CPU), Is.Null, "auto on a CPU: the host workers");
        Assert.That(Pick(AugmentOn.Host, CacheDevice.Auto, pre, cuda), Is.Null, "asked for the host");
        using (var g = Pick(AugmentOn.Device, CacheDevice.Auto, pre, torch.CPU))
        {
            Assert.That(g!.Device.type, Is.EqualTo(DeviceType.CPU));
            Assert.That(g.Bytes, Is.EqualTo(bytes));
            Assert.That(said[^1], Does.StartWith("augmentation: one gather per batch on cpu over the train images resized once"));
        }
        Assert.That(Pick(AugmentOn.Auto, CacheDevice.Auto, pre, cuda, free: bytes * 3 / 2), Is.Null, "over half the GPU's free memory: the host");
        Assert.That(said[^1], Does.StartWith("augmentation: per sample on the host (the train images resized once"));
        Assert.That(Pick(AugmentOn.Auto, CacheDevice.Auto, decoded, cuda), Is.Null, "no resized cache: the host");
        Assert.That(said[^1], Does.StartWith("augmentation: per sample on the host (the batched gather needs the train images resized once"));
        Assert.That(() => Pick(AugmentOn.Device, CacheDevice.Auto, decoded, torch.CPU),
            Throws.TypeOf<UserError>().With.Message.StartsWith("--augment-on device gathers from the train images resized once: it needs --in-memory true"));
        Assert.That(() => Pick(AugmentOn.Device, CacheDevice.Cuda, pre, torch.CPU), Throws.TypeOf<UserError>().With.Message.EqualTo("--cache-device cuda needs a CUDA training device, not cpu"));
        Assert.That(() => Pick(AugmentOn.Device, CacheDevice.Cuda, pre, cuda, free: bytes),
            Throws.TypeOf<UserError>().With.Message.StartsWith("--cache-device cuda: the train images resized once take").And.Message.Contains("GB free"));
        Assert.That(() => Pick(AugmentOn.Device, CacheDevice.Auto, pre, torch.CPU, host: bytes),
            Throws.TypeOf<UserError>().With.Message.StartsWith("--augment-on device: a host copy of the train images resized once takes"));
    }
}
