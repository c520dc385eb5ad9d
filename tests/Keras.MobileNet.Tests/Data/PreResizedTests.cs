namespace Keras.MobileNet.Tests;

/// <summary>The train transform with its resize done once: today's floats, byte for byte.</summary>
public class PreResizedTests() : WithTempDir("km-preresized-")
{
    [TestCase(224, 500, 375)]
    [TestCase(224, 375, 500)]
    [TestCase(224, 300, 300)]
    [TestCase(64, 97, 64)]
    [TestCase(32, 37, 90)]
    public void The_pre_resized_transform_gives_todays_floats_byte_for_byte(int size, int width, int height)
    {
        var img = ImageOps.Decode(TestData.Jpeg(width, height, size + width), "x.jpg");
        var cfg = TransformConfig.For(size);
        var (today, once) = (new TrainTransform(cfg), new PreResizedTrainTransform(cfg));
        var prepared = once.Prepare(img);
        Assert.That(prepared.Resized!.Select(r => Math.Min(r.Width, r.Height)), Is.EqualTo(cfg.TrainResizes), "one image per RandomResize size");
        Assert.That(prepared.Bytes, Is.EqualTo(once.BytesFor(width, height)));
        float[] a = new float[3 * size * size], b = new float[3 * size * size];
        var seen = new List<AugmentParams>();
        foreach (long seed in new long[] { 0, 7 })
            foreach (long epoch in new long[] { 0, 3 })
                for (long index = 0; index < 40; index++)
                {
                    today.Finish(img, seed, epoch, index, a);
                    once.Finish(prepared, seed, epoch, index, b);
                    Assert.That(b, Is.EqualTo(a), $"seed {seed}, epoch {epoch}, sample {index}");
                    seen.Add(Geometry.Sample(cfg, seed, epoch, index, width, height));
                }
        // The draws compared cover each size, both flips and angles near 0 and near +-10 degrees.
        Assert.That(seen.Select(p => p.ResizeShort).Distinct().Order(), Is.EqualTo(cfg.TrainResizes.Order()));
        Assert.That(seen.Select(p => p.Flip).Distinct().Count(), Is.EqualTo(2));
        Assert.That(seen.Any(p => Math.Abs(p.AngleDegrees) < 1) && seen.Any(p => p.AngleDegrees > 9) && seen.Any(p => p.AngleDegrees < -9));
    }

    [Test]
    public void The_in_memory_loader_serves_todays_batches_including_a_resumed_epoch()
    {
        TestData.ImageFolder(dir, ["a", "b", "c"], 7, 1, 90, 64);
        var split = ImageFolder.Scan(dir, "train");
        var cfg = TransformConfig.For(48);
        DataLoader Loader(IImageTransform t) =>
            new(InMemoryDataset.Build(split, t, new BadImageLog(), 2), 4, shuffle: true, seed: 11, workers: 2, CPU);
        static List<float[]> Batches(DataLoader l, int epoch, int skip) =>
            l.Epoch(epoch, skip).Select(b => { using (b) return b.Images.contiguous().data<float>().ToArray(); }).ToList();
        var (today, once) = (Loader(new TrainTransform(cfg)), Loader(new PreResizedTrainTransform(cfg)));
        foreach (int epoch in new[] { 0, 2 })
            Assert.That(Batches(once, epoch, 0), Is.EqualTo(Batches(today, epoch, 0)), $"epoch {epoch}");
        Assert.That(Batches(once, 2, 3), Is.EqualTo(Batches(today, 2, 0).Skip(3)), "resumed after 3 batches of epoch 3");
        Assert.That(once.Dataset is InMemoryDataset m && m.Bytes > ((InMemoryDataset)today.Dataset).Bytes, "the three sizes cost memory");
    }

    [Test]
    public void Building_in_memory_reports_its_progress_about_every_tenth()
    {
        TestData.ImageFolder(dir, ["a", "b"], 10, 1, 40, 30);
        var seen = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
        InMemoryDataset.Build(ImageFolder.Scan(dir, "train"), new PreResizedTrainTransform(TransformConfig.For(32)), new BadImageLog(), 2,
            progress: (n, total) => seen.Add((n, total)));
        Assert.That(seen.Select(p => p.Item1).Order(), Is.EqualTo(new[] { 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 }));
        Assert.That(seen.All(p => p.Item2 == 20));
    }

    [Test]
    public void The_cache_is_chosen_by_its_estimated_size_and_refused_when_it_cannot_fit()
    {
        TestData.ImageFolder(dir, ["a", "b"], 10, 1, 200, 150);
        var split = ImageFolder.Scan(dir, "train");
        var cfg = TransformConfig.For(64);
        long need = new PreResizedTrainTransform(cfg).BytesFor(200, 150) * 20; // every image here is about 200x150
        string sizes = string.Join("/", cfg.TrainResizes);
        var said = new List<string>();
        var log = new LineLogger(said.Add);
        IImageTransform Pick(TrainCache cache, long available, bool inMemory = true) =>
            TrainingData.TrainTransformFor(new TrainOptions { TrainCache = cache, InMemory = inMemory }, cfg, split, log, available);

        Assert.That(Pick(TrainCache.Auto, need * 3), Is.TypeOf<PreResizedTrainTransform>());
        Assert.That(said[^1], Does.StartWith($"train cache: each image resized once to {sizes} px, about"));
        Assert.That(Pick(TrainCache.Auto, need * 3 / 2), Is.TypeOf<TrainTransform>(), "over half the memory: today's cache");
        Assert.That(said[^1], Does.StartWith("train cache: decoded images, resized per sample"));
        Assert.That(Pick(TrainCache.Resized, need * 3 / 2), Is.TypeOf<PreResizedTrainTransform>(), "asked for, and it fits");
        Assert.That(() => Pick(TrainCache.Resized, need), Throws.TypeOf<UserError>().With.Message.StartsWith($"--train-cache resized: the train images at {sizes} px would take about"));
        Assert.That(Pick(TrainCache.Decoded, long.MaxValue), Is.TypeOf<TrainTransform>());
        Assert.That(Pick(TrainCache.Resized, long.MaxValue / 4, inMemory: false), Is.TypeOf<TrainTransform>(), "streaming keeps the per-sample path");
        Assert.That(said[^1], Does.StartWith("train data: streamed").And.EndWith("--in-memory true would train faster from the second epoch on"));
        Assert.That(Pick(TrainCache.Auto, need, inMemory: false), Is.TypeOf<TrainTransform>());
        Assert.That(said[^1], Does.EndWith("streaming is the right choice here"), "the cache would take more than half the memory");
    }
}
