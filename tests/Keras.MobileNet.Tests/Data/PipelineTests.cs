using System.Formats.Tar;
using System.Security.Cryptography;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Keras.MobileNet.Tests;

public class PipelineTests
{
    string dir = "";
    [OneTimeSetUp] public void Make() => dir = TestData.ImageFolder(Directory.CreateTempSubdirectory("km-pipe").FullName, ["a", "b", "c"], 6, 2, 120, 90);
    [OneTimeTearDown] public void Remove() => Directory.Delete(dir, true);

    static float[] Flat(Tensor t) => t.contiguous().data<float>().ToArray();

    DataLoader Loader(int workers, bool inMemory, int size = 64)
    {
        var split = ImageFolder.Scan(dir, "train");
        var transform = new TrainTransform(TransformConfig.For(size));
        var log = new BadImageLog();
        IImageDataset ds = inMemory ? InMemoryDataset.Build(split, transform, log, workers) : new StreamingDataset(split, transform, log);
        return new DataLoader(ds, 5, shuffle: true, seed: 42, workers, CPU) { HandOffs = HandedOver };
    }

    static readonly HandOffCounter HandedOver = new();

    static List<(float[] X, long[] Y)> Take(DataLoader loader, int epoch) =>
        loader.Epoch(epoch).Select(b => { using (b) return (Flat(b.Images), b.Labels.data<long>().ToArray()); }).ToList();

    /// <summary>
    /// After each epoch: the dispose-scope statistics' live count for this thread plus what the loader's thread handed
    /// over (exact, and blind to other threads, so to other tests' garbage), and TorchSharp's process-wide live count
    /// once finalizers have run (tensors still referenced).
    /// </summary>
    sealed class LiveTensors(Action<int>? perBatch = null) : Callback
    {
        public readonly List<(long ByScopes, long Total)> AfterEpoch = [];
        public override void OnBatchEnd(int batch, Logs logs) => perBatch?.Invoke(batch);
        public override void OnEpochEnd(int epoch, Logs logs)
        {
            long byScopes = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount + HandedOver.Count;
            GC.Collect();
            GC.WaitForPendingFinalizers();
            AfterEpoch.Add((byScopes, Tensor.TotalCount));
        }
    }

    [Test]
    public void Fit_over_the_loader_leaves_no_tensor_behind_from_epoch_to_epoch()
    {
        List<(long ByScopes, long Total)> Run(Action<int>? perBatch)
        {
            manual_seed(0);
            using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 3)), CPU, 3);
            model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
            var probe = new LiveTensors(perBatch);
            var ckpt = Directory.CreateTempSubdirectory("km-live").FullName;
            using var ckptCallback = new ModelCheckpoint(ckpt, tensorBoard: true);
            try
            {
                // The callbacks of a Train run, before the probe: validation, the running loss read after every batch,
                // checkpoints (host copies), the optimizer's state file and TensorBoard events, every epoch.
                model.Fit(Loader(2, inMemory: true, size: 32), 4, validation: Loader(1, inMemory: true, size: 32),
                    callbacks: [new LearningRateScheduler(e => 1e-3 / (e + 1)), new TerminateOnNaN(checkEveryBatches: 1),
                        ckptCallback, probe]);
            }
            finally { Directory.Delete(ckpt, true); }
            return probe.AfterEpoch;
        }
        var clean = Run(null);
        Assert.That(clean.Select(c => c.ByScopes).Distinct(), Has.Exactly(1).Items, $"dispose-scope statistics, total per epoch: {string.Join(", ", clean)}");
        Assert.That(clean.Select(c => c.Total).Distinct(), Has.Exactly(1).Items, $"dispose-scope statistics, total per epoch: {string.Join(", ", clean)}");
        // The same probe sees one tensor kept per batch (4 batches an epoch) in both counts.
        var kept = new List<Tensor>();
        var leaky = Run(_ => kept.Add(zeros(1)));
        Assert.That(leaky[3].Total - leaky[1].Total, Is.EqualTo(8));
        Assert.That(leaky[3].ByScopes - leaky[1].ByScopes, Is.EqualTo(8));
        foreach (var t in kept) t.Dispose();
    }

    [Test]
    public void Same_seed_gives_identical_batches_with_1_and_4_workers_and_across_runs_epochs_differ()
    {
        var one = Take(Loader(1, inMemory: true), 0);
        var four = Take(Loader(4, inMemory: true), 0);
        var again = Take(Loader(4, inMemory: false), 0);
        Assert.That(one, Has.Count.EqualTo(4), "18 images in batches of 5: the last partial batch is kept");
        Assert.That(one[^1].Y, Has.Length.EqualTo(3));
        for (int b = 0; b < one.Count; b++)
        {
            Assert.That(four[b].X, Is.EqualTo(one[b].X), $"batch {b}, 4 workers");
            Assert.That(four[b].Y, Is.EqualTo(one[b].Y));
            Assert.That(again[b].X, Is.EqualTo(one[b].X), $"batch {b}, second run (streaming)");
        }
        var next = Take(Loader(2, inMemory: true), 1);
        Assert.That(next.Select(b => b.Y).SelectMany(y => y), Is.Not.EqualTo(one.SelectMany(b => b.Y)), "another epoch, another order");
        Assert.That(next[0].X, Is.Not.EqualTo(one[0].X));
    }

    [Test]
    public void Resumed_epoch_skips_batches_without_changing_them()
    {
        var loader = Loader(2, inMemory: true);
        var full = Take(loader, 3);
        var tail = loader.Epoch(3, skipBatches: 2).Select(b => { using (b) return Flat(b.Images); }).ToList();
        Assert.That(tail, Has.Count.EqualTo(2));
        Assert.That(tail[0], Is.EqualTo(full[2].X));
    }

    [Test]
    public void Augment_parameters_are_pure_and_cover_their_ranges()
    {
        var cfg = TransformConfig.For(224);
        Assert.That(cfg.TrainResizes, Is.EqualTo(new[] { 256, 296, 384 }));
        Assert.That(cfg.ValResize, Is.EqualTo(256));
        var ps = Enumerable.Range(0, 400).Select(i => Geometry.Sample(cfg, 7, 0, i, 500, 375)).ToList();
        Assert.That(Geometry.Sample(cfg, 7, 0, 11, 500, 375), Is.EqualTo(ps[11]));
        Assert.That(ps.Select(p => p.ResizeShort).Distinct().Order(), Is.EqualTo(new[] { 256, 296, 384 }));
        Assert.That(ps.All(p => Math.Abs(p.AngleDegrees) <= 10));
        Assert.That(ps.Min(p => p.AngleDegrees), Is.LessThan(-8));
        Assert.That(ps.Max(p => p.AngleDegrees), Is.GreaterThan(8));
        Assert.That(ps.Count(p => p.Flip), Is.InRange(160, 240));
        foreach (var p in ps)
        {
            var (w, h) = Geometry.ResizeShorter(500, 375, p.ResizeShort);
            Assert.That(p.Top, Is.InRange(0, h - 224));
            Assert.That(p.Left, Is.InRange(0, w - 224));
        }
        Assert.That(ps.Select(p => p.Left).Distinct().Count(), Is.GreaterThan(50));
        Assert.That(TransformConfig.For(112).TrainResizes, Is.EqualTo(new[] { 128, 148, 192 }));
    }

    [Test]
    public void Resize_and_center_crop_geometry_follow_torchvision()
    {
        Assert.That(Geometry.ResizeShorter(500, 375, 256), Is.EqualTo((341, 256)));   // int(256 * 500 / 375) = 341
        Assert.That(Geometry.ResizeShorter(375, 500, 256), Is.EqualTo((256, 341)));
        Assert.That(Geometry.CenterCrop(341, 256, 224), Is.EqualTo((16, 58)));       // round(58.5) = 58 (half to even)
        Assert.That(Geometry.CenterCrop(227, 225, 224), Is.EqualTo((0, 2)));          // round(0.5) = 0, round(1.5) = 2
    }

    [Test]
    public void Val_transform_matches_an_independent_reference()
    {
        byte[] jpeg = TestData.Jpeg(300, 200, 5);
        var cfg = TransformConfig.For(64); // Resize(73) -> CenterCrop(64)
        Assert.That(cfg.ValResize, Is.EqualTo(73));
        var t = new ValTransform(cfg);
        var dest = new float[3 * 64 * 64];
        t.Finish(t.Prepare(ImageOps.Decode(jpeg, "x.jpg")), 0, 0, 0, dest);

        // Reference: Pillow's bilinear-with-antialias written out in floating point (no fixed point, no tables),
        // torchvision's geometry and normalisation formulas written out here.
        var src = ImageOps.Decode(jpeg, "x.jpg");
        int newW = (int)(73.0 * 300 / 200), newH = 73;                 // 109 x 73
        double[] Resample(Func<int, double> get, int inSize, int outSize, int at)
        {
            double scale = (double)inSize / outSize, fs = Math.Max(1, scale), center = (at + 0.5) * scale;
            int lo = Math.Max(0, (int)(center - fs + 0.5)), hi = Math.Min(inSize, (int)(center + fs + 0.5));
            var w = Enumerable.Range(lo, hi - lo).Select(i => Math.Max(0, 1 - Math.Abs((i - center + 0.5) / fs))).ToArray();
            double sum = w.Sum();
            return [Enumerable.Range(lo, hi - lo).Sum(i => get(i) * w[i - lo] / sum)];
        }
        byte Clamp(double v) => (byte)Math.Clamp(Math.Round(v), 0, 255);
        var horiz = new byte[src.Height, newW, 3];
        for (int y = 0; y < src.Height; y++) for (int x = 0; x < newW; x++) for (int c = 0; c < 3; c++)
            horiz[y, x, c] = Clamp(Resample(i => src.Pixels[(y * src.Width + i) * 3 + c], src.Width, newW, x)[0]);
        int top = (int)Math.Round((newH - 64) / 2.0, MidpointRounding.ToEven);  // round(4.5) = 4
        int left = (int)Math.Round((newW - 64) / 2.0, MidpointRounding.ToEven); // round(22.5) = 22
        Assert.That((top, left), Is.EqualTo((4, 22)));
        float[] mean = [0.4625f, 0.4580f, 0.4295f], std = [0.2452f, 0.2390f, 0.2469f];
        double worst = 0;
        int exact = 0;
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
                for (int c = 0; c < 3; c++)
                {
                    byte v = Clamp(Resample(i => horiz[i, left + x, c], src.Height, newH, top + y)[0]);
                    double want = (v / 255.0 - mean[c]) / std[c], got = dest[c * 4096 + y * 64 + x];
                    worst = Math.Max(worst, Math.Abs(got - want));
                    if (Math.Abs(got - want) < 1e-5) exact++;
                }
        // Fixed-point rounding may move a value by one level (1/255/std = 0.017) now and then; the geometry may not.
        Assert.That(worst, Is.LessThan(0.0171));
        Assert.That(exact, Is.GreaterThan(0.97 * 3 * 4096));
    }

    [Test]
    public void Resizing_a_window_gives_exactly_the_pixels_of_the_full_resize()
    {
        var img = ImageOps.Decode(TestData.Jpeg(500, 375, 4), "x.jpg");
        var full = ImageOps.Resize(img, 395, 296);
        var window = PilResize.Resize(img.Pixels, 500, 375, 395, 296, 40, 30, 250, 200);
        Assert.That(window, Is.EqualTo(CropRect(full, 40, 30, 250, 200)));
        // And the fused transform reading the window equals the one reading the whole resized image.
        var cfg = TransformConfig.For(224);
        var lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
        foreach (var angle in new[] { -10.0, -3.3, 0, 7.1, 10 })
        {
            var p = new AugmentParams(296, angle, 50, 120, angle > 0);
            var (x, y, w, h) = ImageOps.SourceWindow(395, 296, p, 224);
            var win = new RgbImage(w, h, PilResize.Resize(img.Pixels, 500, 375, 395, 296, x, y, w, h));
            float[] a = new float[3 * 224 * 224], b = new float[3 * 224 * 224];
            ImageOps.RotateCropFlip(full, p, 224, lut, a);
            ImageOps.RotateCropFlip(win, x, y, 395, 296, p, 224, lut, b);
            Assert.That(b, Is.EqualTo(a), $"angle {angle}");
        }
    }

    [Test]
    public void A_resize_of_the_height_alone_is_the_transpose_of_a_resize_of_the_width()
    {
        // Without a horizontal resize the vertical pass reads the source rows in place; with one it reads the
        // horizontal pass's rows. The two must agree: resizing the height of an image equals resizing the width of its
        // transpose, transposed back. Also a window of the height-only resize is that window of the full one.
        var img = ImageOps.Decode(TestData.Jpeg(90, 70, 6), "x.jpg");
        var tall = ImageOps.Resize(img, 90, 41);
        var across = ImageOps.Resize(Transpose(img), 41, 90);
        Assert.That(tall.Pixels, Is.EqualTo(Transpose(across).Pixels));
        Assert.That(PilResize.Resize(img.Pixels, 90, 70, 90, 41, 13, 5, 60, 30), Is.EqualTo(CropRect(tall, 13, 5, 60, 30)));
        Assert.That(ImageOps.Resize(img, 90, 70), Is.SameAs(img), "the same size is the image itself");
        Assert.That(ImageOps.Resize(img, 90, 69).Height, Is.EqualTo(69));
        Assert.That(ImageOps.Resize(img, 89, 70).Width, Is.EqualTo(89));
    }

    static RgbImage Transpose(RgbImage src)
    {
        var o = new byte[src.Pixels.Length];
        for (int y = 0; y < src.Height; y++)
            for (int x = 0; x < src.Width; x++)
                for (int c = 0; c < 3; c++) o[(x * src.Height + y) * 3 + c] = src.Pixels[(y * src.Width + x) * 3 + c];
        return new RgbImage(src.Height, src.Width, o);
    }

    [Test]
    public void Transform_and_resize_inputs_out_of_range_are_clear_errors()
    {
        Assert.That(() => TransformConfig.For(31), Throws.ArgumentException.With.Message.Contains("--image-size must be at least 32"));
        Assert.That(TransformConfig.For(32).ImageSize, Is.EqualTo(32));
        Assert.That(() => TransformConfig.For(64, [0.5f, 0.5f]), Throws.ArgumentException.With.Message.Contains("mean and std"));
        Assert.That(() => TransformConfig.For(64, null, [0.2f, 0.2f]), Throws.ArgumentException.With.Message.Contains("mean and std"));
        Assert.That(() => TransformConfig.For(64, null, [0.2f, 0f, 0.2f]), Throws.ArgumentException.With.Message.Contains("std > 0"));
        Assert.That(() => TransformConfig.For(64, null, [0.2f, float.NaN, 0.2f]), Throws.ArgumentException.With.Message.Contains("std > 0"));
        var small = TransformConfig.For(64) with { TrainResizes = [48] };
        Assert.That(() => Geometry.Sample(small, 0, 0, 0, 100, 80), Throws.InvalidOperationException.With.Message.Contains("smaller than the crop 64"));

        var px = new byte[10 * 8 * 3];
        Assert.That(() => PilResize.Resize(px, 10, 9, 5, 5), Throws.ArgumentException.With.Message.Contains("pixel buffer"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 0, 5), Throws.ArgumentException.With.Message.Contains("positive"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 5, 0), Throws.ArgumentException.With.Message.Contains("positive"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 20, 16, 15, 0, 6, 4), Throws.ArgumentException.With.Message.Contains("window outside"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 20, 16, 0, 13, 6, 4), Throws.ArgumentException.With.Message.Contains("window outside"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 20, 16, -1, 0, 6, 4), Throws.ArgumentException.With.Message.Contains("window outside"));
        Assert.That(() => PilResize.Resize(px, 10, 8, 20, 16, 0, -1, 6, 4), Throws.ArgumentException.With.Message.Contains("window outside"));
        Assert.That(PilResize.Resize(px, 10, 8, 20, 16, 14, 12, 6, 4), Has.Length.EqualTo(6 * 4 * 3), "a window touching the corner is inside");

        var img = new RgbImage(10, 8, px);
        var lut = ImageOps.NormalizeTable([0.5f, 0.5f, 0.5f], [0.25f, 0.25f, 0.25f]);
        Assert.That(() => ImageOps.ToChw(img, lut, new float[3 * 80 - 1]), Throws.ArgumentException.With.Message.Contains("destination"));
        Assert.That(() => ImageOps.RotateCropFlip(img, new AugmentParams(8, 0, 0, 0, false), 4, lut, new float[3 * 16 + 3]),
            Throws.ArgumentException.With.Message.Contains("destination"));
    }

    /// <summary>SplitMix64 written out from its published definition (Steele, Lea and Flood 2014; Vigna's splitmix64.c).</summary>
    static ulong SplitMix(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong Finalize(ulong z) { ulong s = z - 0x9E3779B97F4A7C15UL; return SplitMix(ref s); }

    /// <summary>
    /// The data order and every augmentation draw are a contract: a run resumed or repeated with a later version must see
    /// the same batches. The stream is pinned to SplitMix64 (its published first output from state 0 anchors the
    /// reference here), keyed by (seed, epoch, index) as documented, with the draws of a sample in a fixed order.
    /// </summary>
    [Test]
    public void The_random_stream_is_splitmix64_keyed_by_seed_epoch_and_index()
    {
        ulong zero = 0;
        Assert.That(SplitMix(ref zero), Is.EqualTo(0xE220A8397B1DCDAFUL), "the published first output of splitmix64 from 0");
        foreach (var (seed, epoch, index) in new[] { (0L, 0L, 0L), (7L, 3L, 11L), (42L, 1L, -1L), (-5L, 9L, 123456L) })
        {
            ulong state = Finalize((ulong)seed * 0x9E3779B97F4A7C15UL ^ Finalize((ulong)epoch + 0x632BE59BD9B4E019UL)
                ^ Finalize(~(ulong)index * 0xD1B54A32D192ED03UL));
            var rng = new CounterRng(seed, epoch, index);
            for (int i = 0; i < 4; i++) Assert.That(rng.Next(), Is.EqualTo(SplitMix(ref state)), $"({seed}, {epoch}, {index}) draw {i}");
            Assert.That(rng.NextDouble(), Is.EqualTo((SplitMix(ref state) >> 11) * (1.0 / (1UL << 53))));
            Assert.That(rng.NextInt(1000), Is.EqualTo((int)((UInt128)SplitMix(ref state) * 1000UL >> 64)));
        }
        Assert.That(() => new CounterRng(1, 1, 1).NextInt(0), Throws.TypeOf<ArgumentOutOfRangeException>());
        // An epoch's order: Fisher-Yates from the top, with the stream of index -1.
        var order = new CounterRng(3, 2, -1);
        var expected = Enumerable.Range(0, 10).ToArray();
        for (int i = 9; i > 0; i--) { int j = order.NextInt(i + 1); (expected[i], expected[j]) = (expected[j], expected[i]); }
        Assert.That(CounterRng.Permutation(3, 2, 10), Is.EqualTo(expected));
        // A sample's draws in order: resize choice, angle, top, left, flip.
        var cfg = TransformConfig.For(64);
        var r = new CounterRng(9, 4, 17);
        int size = cfg.TrainResizes[r.NextInt(3)];
        double angle = (r.NextDouble() * 2 - 1) * 10;
        var (w, h) = Geometry.ResizeShorter(300, 200, size);
        var want = new AugmentParams(size, angle, r.NextInt(h - 64 + 1), r.NextInt(w - 64 + 1), r.NextDouble() < 0.5);
        Assert.That(Geometry.Sample(cfg, 9, 4, 17, 300, 200), Is.EqualTo(want));
    }

    [Test]
    public void A_crop_may_start_at_every_offset_up_to_the_last_and_a_side_shorter_than_the_crop_is_refused()
    {
        var tight = TransformConfig.For(64) with { TrainResizes = [65] };
        var ps = Enumerable.Range(0, 200).Select(i => Geometry.Sample(tight, 1, 0, i, 65, 65)).ToList();
        Assert.That(ps.Select(p => p.Top).Distinct().Order(), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(ps.Select(p => p.Left).Distinct().Order(), Is.EqualTo(new[] { 0, 1 }));
        var exact = TransformConfig.For(64) with { TrainResizes = [64] };
        Assert.That(Geometry.Sample(exact, 1, 0, 0, 64, 64) is { Top: 0, Left: 0 }, "a side equal to the crop is allowed");
        // Resize(48) of a tall image gives 48 x 160: one side short is enough to refuse, in either orientation.
        var small = TransformConfig.For(64) with { TrainResizes = [48] };
        Assert.That(() => Geometry.Sample(small, 0, 0, 0, 60, 200), Throws.InvalidOperationException);
        Assert.That(() => Geometry.Sample(small, 0, 0, 0, 200, 60), Throws.InvalidOperationException);
        Assert.That(PilResize.Resize(new byte[10 * 8 * 3], 10, 8, 1, 1), Has.Length.EqualTo(3), "a 1 x 1 output is allowed");
    }

    static byte[] CropRect(RgbImage src, int x0, int y0, int w, int h)
    {
        var o = new byte[w * h * 3];
        for (int y = 0; y < h; y++) Buffer.BlockCopy(src.Pixels, ((y0 + y) * src.Width + x0) * 3, o, y * w * 3, w * 3);
        return o;
    }

    [Test]
    public void Train_samples_have_the_right_shape_range_and_really_vary()
    {
        var cfg = TransformConfig.For(64);
        var t = new TrainTransform(cfg);
        var img = ImageOps.Decode(TestData.Jpeg(200, 150, 3), "x.jpg");
        var outs = Enumerable.Range(0, 16).Select(i => { var d = new float[3 * 64 * 64]; t.Finish(img, 1, 0, i, d); return d; }).ToList();
        float lo = Enumerable.Range(0, 3).Min(c => -cfg.Mean[c] / cfg.Std[c]), hi = Enumerable.Range(0, 3).Max(c => (1 - cfg.Mean[c]) / cfg.Std[c]);
        Assert.That(outs.All(o => o.All(v => v >= lo - 1e-4 && v <= hi + 1e-4)), "values are normalized [0, 1] pixels");
        Assert.That(outs.Select(o => o.Average()).Distinct().Count(), Is.GreaterThan(10), "crops differ");
        // A flip is a mirror: find two samples with the same choices but the flip, and compare.
        var cfgNoRot = cfg with { MaxRotationDegrees = 0 };
        var p = Geometry.Sample(cfgNoRot, 1, 0, 0, 200, 150);
        var (w, h) = Geometry.ResizeShorter(200, 150, p.ResizeShort);
        var resized = ImageOps.Resize(img, w, h);
        var lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
        float[] a = new float[3 * 4096], b = new float[3 * 4096];
        ImageOps.RotateCropFlip(resized, p with { Flip = false }, 64, lut, a);
        ImageOps.RotateCropFlip(resized, p with { Flip = true }, 64, lut, b);
        Assert.That(b[5], Is.EqualTo(a[63 - 5]));
        Assert.That(a, Is.Not.EqualTo(b));
        // Without rotation the crop is a plain window of the resized image.
        Assert.That(a[0], Is.EqualTo(lut[0][resized.Pixels[(p.Top * w + p.Left) * 3]]));
        // A 10 degree rotation leaves black (fill 0) corners when the crop touches the edge.
        var corner = new AugmentParams(p.ResizeShort, 10, 0, 0, false);
        ImageOps.RotateCropFlip(resized, corner, 64, lut, a);
        Assert.That(a[0], Is.EqualTo(lut[0][0]));
    }

    [Test]
    public void Corrupt_and_empty_images_are_skipped_and_reported()
    {
        string root = Directory.CreateTempSubdirectory("km-bad").FullName;
        try
        {
            TestData.ImageFolder(root, ["x", "y"], 3, 1);
            File.WriteAllBytes(Path.Combine(root, "train", "x", "empty.jpg"), []);
            var jpeg = TestData.Jpeg(80, 60, 9);
            File.WriteAllBytes(Path.Combine(root, "train", "y", "corrupt.jpg"), jpeg.Take(40).Concat(new byte[200]).ToArray());
            var split = ImageFolder.Scan(root, "train");
            Assert.That(split.Samples, Has.Count.EqualTo(8));
            var messages = new List<string>();
            var log = new BadImageLog { OnWarning = new LineLogger(m => { lock (messages) messages.Add(m); }) };
            var ds = InMemoryDataset.Build(split, new TrainTransform(TransformConfig.For(32)), log, 2);
            Assert.That(ds.Count, Is.EqualTo(6));
            Assert.That(log.Entries.Keys.Select(Path.GetFileName), Is.EquivalentTo(new[] { "empty.jpg", "corrupt.jpg" }));
            Assert.That(messages, Has.Some.Contains("empty.jpg"));
            var streaming = new StreamingDataset(split, new TrainTransform(TransformConfig.For(32)), new BadImageLog());
            Assert.That(streaming.Count, Is.LessThanOrEqualTo(7));
            var batches = new DataLoader(ds, 4, true, 0, 2, CPU).Epoch(0).Select(b => { using (b) return b.Count; }).ToList();
            Assert.That(batches.Sum(), Is.EqualTo(6));
            // A file that disappears after the scan is skipped and reported by the streaming dataset too.
            var streamLog = new BadImageLog();
            var late = new StreamingDataset(split, new TrainTransform(TransformConfig.For(32)), streamLog);
            string gone = Path.Combine(root, "train", "x", "x_0.JPEG");
            Assert.That(late.Prepared(0), Is.Not.Null, "x_0.JPEG is the first readable sample");
            File.Delete(gone);
            Assert.That(late.Prepared(0), Is.Null);
            Assert.That(streamLog.Entries.Keys, Does.Contain(gone));
            // ... and left out of its batch, not trained as a blank image with its label; the other rows are unchanged.
            var loader = new DataLoader(late, 4, false, 0, 2, CPU);
            using (var batch = loader.MakeBatch(0, [0, 1, 2, 3]))
            using (var rest = loader.MakeBatch(0, [1, 2, 3]))
            {
                Assert.That(batch.Count, Is.EqualTo(3));
                Assert.That(batch.Labels.data<long>().ToArray(), Is.EqualTo(new long[] { late.Label(1), late.Label(2), late.Label(3) }));
                Assert.That(batch.Images.eq(rest.Images).all().item<bool>(), "the readable rows, in order");
            }
            Assert.That(loader.Epoch(0).Select(b => { using (b) return b.Count; }).Sum(), Is.EqualTo(late.Count - 1));
            using (var none = loader.MakeBatch(0, [0])) Assert.That(none.Count, Is.Zero);
            Assert.That(loader.Epoch(0).Count(), Is.EqualTo(loader.BatchesPerEpoch), "no empty batch when the bad one shares a batch");
        }
        finally { Directory.Delete(root, true); }
    }

    [Test]
    public void Oversized_header_is_rejected_before_decoding()
    {
        var jpeg = TestData.Jpeg(100, 100, 1);
        Assert.That(() => ImageOps.Decode(jpeg, "big.jpg", maxPixels: 9_999),
            Throws.InstanceOf<BadImageException>().With.Message.Contains("pixel limit"));
    }

    /// <summary>fixtures/decode: JPEGs and PNGs of each common layout and what Pillow decodes from them (make.py).</summary>
    static IEnumerable<string> PillowCases() =>
        System.Text.Json.JsonDocument.Parse(File.ReadAllText(Setup.Fixture("decode/cases.json")))
            .RootElement.GetProperty("cases").EnumerateObject().Select(p => p.Name);

    [TestCaseSource(nameof(PillowCases))]
    public void Decoding_equals_Pillow_byte_for_byte(string name)
    {
        string path = Setup.Fixture("decode/" + name);
        var img = ImageOps.DecodeFile(path);
        var want = File.ReadAllBytes(path + ".rgb");
        Assert.That((img.Width, img.Height), Is.EqualTo((61, 47)));
        int differ = want.Where((b, i) => b != img.Pixels[i]).Count();
        Assert.That(differ, Is.Zero, $"{name}: {differ} of {want.Length} bytes differ from Pillow's");
    }

    static byte[] Encode(Image<Rgb24> img, SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        using var ms = new MemoryStream();
        img.Save(ms, encoder);
        return ms.ToArray();
    }

    /// <summary>
    /// A GIF whose 16 frames each claim 7000x7000 pixels in a few hundred bytes: a decoder that reads every frame
    /// allocates gigabytes for it, whatever the file is called.
    /// </summary>
    public static byte[] GifBomb(int frames = 16, int side = 7000)
    {
        var b = new List<byte>();
        void U16(int v) { b.Add((byte)v); b.Add((byte)(v >> 8)); }
        b.AddRange("GIF89a"u8.ToArray());
        U16(side); U16(side); b.AddRange([0x80, 0, 0]); // global colour table of two entries
        b.AddRange([0, 0, 0, 255, 255, 255]);
        for (int f = 0; f < frames; f++)
        {
            b.Add(0x2C); U16(0); U16(0); U16(side); U16(side); b.Add(0);
            b.AddRange([2, 2, 0x4C, 0x01, 0]); // LZW: minimum code size 2, clear then end
        }
        b.Add(0x3B);
        return b.ToArray();
    }

    [Test]
    public void Only_JPEG_and_PNG_content_is_decoded_whatever_the_name_says()
    {
        using var img = new Image<Rgb24>(12, 9);
        var kinds = new (string Name, byte[] Data, string Format)[]
        {
            ("bomb.png", GifBomb(), "GIF"),
            ("small.jpg", Encode(img, new SixLabors.ImageSharp.Formats.Gif.GifEncoder()), "GIF"),
            ("page.png", Encode(img, new SixLabors.ImageSharp.Formats.Tiff.TiffEncoder()), "not a JPEG or PNG"),
            ("bitmap.JPEG", Encode(img, new SixLabors.ImageSharp.Formats.Bmp.BmpEncoder()), "BMP"),
        };
        foreach (var (name, data, format) in kinds)
        {
            Assert.That(() => ImageOps.Decode(data, name), Throws.InstanceOf<BadImageException>()
                .With.Message.StartsWith(name + ": ").And.Message.Contains(format), name);
            using var header = new MemoryStream(data);
            Assert.That(() => ImageOps.CheckHeader(header, name), Throws.InstanceOf<BadImageException>(), name + " (header only)");
        }
        // The content decides, both ways: a PNG called .jpg is read.
        var png = Encode(img, new SixLabors.ImageSharp.Formats.Png.PngEncoder());
        Assert.That(ImageOps.Decode(png, "really-a-png.jpg").Width, Is.EqualTo(12));
    }

    [Test]
    public void Truncated_JPEG_is_refused_as_Pillow_refuses_it()
    {
        var jpeg = TestData.Jpeg(80, 60, 5);
        var cut = jpeg[..(jpeg.Length * 2 / 3)];
        Assert.That(() => ImageOps.Decode(cut, "cut.jpg"), Throws.InstanceOf<BadImageException>().With.Message.Contains("truncated"));
        Assert.That(() => ImageOps.Decode(jpeg[..20], "head.jpg"), Throws.InstanceOf<BadImageException>());
    }

    [Test]
    public void Empty_class_folder_and_missing_split_are_clear_errors()
    {
        string root = Directory.CreateTempSubdirectory("km-empty").FullName;
        try
        {
            Assert.That(() => ImageFolder.Scan(root, "train"), Throws.InstanceOf<UserError>().With.Message.Contains("does not exist"));
            TestData.ImageFolder(root, ["x", "y"], 1, 0);
            Assert.That(() => ImageFolder.Scan(root, "val"), Throws.InstanceOf<UserError>().With.Message.Contains("no images"));
            Directory.CreateDirectory(Path.Combine(root, "train", "z"));
            Assert.That(() => ImageFolder.Scan(root, "train"), Throws.InstanceOf<UserError>().With.Message.Contains("has no images"));
        }
        finally { Directory.Delete(root, true); }
    }
}
