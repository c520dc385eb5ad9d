using System.Diagnostics;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using static TorchSharp.torch;

namespace Keras.MobileNet.Bench;

/// <summary>One mode's rate with <see cref="Workers"/> threads (host workers, or libtorch's threads for the gather), the bytes its cached images take and the process's peak working set while it ran.</summary>
public sealed record PipelineRate(string Mode, int Workers, double ImagesPerSecond, long CacheBytes, long PeakWorkingSetBytes);

public sealed record FootprintEstimate(int TrainWidth, int TrainHeight, double TrainBytesPerImage, double ValBytesPerImage,
    double ManagedBytesPerImage, long ImagenetteFullTrainImages, long ImagenetteFullValImages, double ImagenetteFullEstimateBytes,
    double PreResizedTrainBytesPerImage, double ImagenetteFullPreResizedEstimateBytes);

public sealed record PipelineBenchResult(int Images, int SourceWidth, int SourceHeight, int ImageSize, double ImageSharpDecodePerSecond,
    double SkiaSharpDecodePerSecond, double ResizePerSecond, double RotateCropFlipNormalizePerSecond, IReadOnlyList<PipelineRate> Rates,
    FootprintEstimate Footprint, long PeakWorkingSetBytes, string Decoder, string Resampler);

/// <summary>Images per second of the train and val transforms, cached and streaming, with 1..N workers, on generated JPEGs.</summary>
public static class PipelineBench
{
    public static PipelineBenchResult Run(int images, IReadOnlyList<int> workers, int width = 500, int height = 375, int imageSize = 224,
        Action<string>? log = null, Device? gatherDevice = null)
    {
        gatherDevice ??= CPU;
        string root = Directory.CreateTempSubdirectory("km-bench").FullName;
        try
        {
            var files = Synthetic.PhotoFolder(root, "train", images, classes: 2, width, height);
            var bytes = files.Select(File.ReadAllBytes).ToList();
            double Rate(int n, Action<int> body)
            {
                for (int i = 0; i < Math.Min(n, 48); i++) body(i); // past the JIT's first tiers
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < n; i++) body(i);
                return n / clock.Elapsed.TotalSeconds;
            }
            // Single-thread stage costs: where the time goes.
            // Ours (Skia's codecs, bounded, to RGB) against ImageSharp's decoder, which it replaced.
            var oneThread = SixLabors.ImageSharp.Configuration.Default.Clone();
            oneThread.MaxDegreeOfParallelism = 1; // as our workers use it: they parallelise, the decoder must not
            double isDecode = Rate(images, i =>
            {
                using var img = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(oneThread, bytes[i]);
                img.CopyPixelDataTo(new byte[img.Width * img.Height * 3]);
            });
            double skDecode = Rate(images, i => ImageOps.Decode(bytes[i], files[i]));
            var decoded = bytes.Select((b, i) => ImageOps.Decode(b, files[i])).ToList();
            var cfg = TransformConfig.For(imageSize);
            var (rw, rh) = Geometry.ResizeShorter(width, height, cfg.TrainResizes[1]);
            double resize = Rate(images, i => ImageOps.Resize(decoded[i], rw, rh));
            var resized = ImageOps.Resize(decoded[0], rw, rh);
            var lut = ImageOps.NormalizeTable(cfg.Mean, cfg.Std);
            var dest = new float[3 * imageSize * imageSize];
            var one = cfg with { TrainResizes = [cfg.TrainResizes[1]] }; // every sample at the resize measured above
            double fused = Rate(images, i => ImageOps.RotateCropFlip(resized, Geometry.Sample(one, 0, 0, i, width, height), imageSize, lut, dest));
            // The same over every image's pre-resized copies (memory-cold, as the loader reads them), each sample's own choices.
            var once = new PreResizedTrainTransform(cfg);
            var prepared = decoded.Select(once.Prepare).ToList();
            double fusedCold = Rate(images, i => once.Finish(prepared[i], 0, 1, i, dest));
            log?.Invoke($"one thread: decode {skDecode:F0}/s (ImageSharp {isDecode:F0}/s), resize {resize:F0}/s, rotate+crop+flip+normalize {fused:F0}/s " +
                        $"(one image), {fusedCold:F0}/s (each image's pre-resized copies)");

            var split = ImageFolder.Scan(root, "train");
            var rates = new List<PipelineRate>();
            foreach (int w in workers)
                foreach (var (mode, train, cached) in new[] { ("train_cached", true, true), ("train_preresized", true, true), ("train_gather", true, true),
                             ("train_streaming", true, false), ("val_cached", false, true), ("val_streaming", false, false) })
                {
                    // train_cached: today's in-memory path (decoded images, a resize per sample); train_preresized: each
                    // image kept at its three RandomResize sizes (--train-cache resized); train_gather: those images packed
                    // in one tensor and each batch made by one gather on --device (--augment-on device; on the CPU with w
                    // libtorch threads). The same batches in all three.
                    IImageTransform t = !train ? new ValTransform(cfg) : mode == "train_cached" ? new TrainTransform(cfg) : new PreResizedTrainTransform(cfg);
                    GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
                    using var peak = new Measure.PeakSampler();
                    var log2 = new BadImageLog();
                    IImageDataset ds = cached ? InMemoryDataset.Build(split, t, log2, w) : new StreamingDataset(split, t, log2);
                    using var gather = mode == "train_gather" ? GatherCache.Build(ds, gatherDevice) : null;
                    var loader = new DataLoader(ds, 64, true, 0, w, gather is null ? CPU : gatherDevice) { Gather = gather };
                    int threads = get_num_threads();
                    if (gather is not null && gatherDevice.type == TorchSharp.DeviceType.CPU) set_num_threads(w);
                    try
                    {
                        foreach (var b in loader.Epoch(0)) b.Dispose(); // warm-up epoch
                        var clock = Stopwatch.StartNew();
                        int n = 0;
                        foreach (var b in loader.Epoch(1)) { n += b.Count; b.Dispose(); }
                        Measure.Sync(gather?.Device ?? CPU);
                        long cacheBytes = ((ds as InMemoryDataset)?.Bytes ?? 0) + (gather?.Bytes ?? 0);
                        rates.Add(new PipelineRate(mode, w, n / clock.Elapsed.TotalSeconds, cacheBytes, peak.Max));
                    }
                    finally { set_num_threads(threads); }
                    log?.Invoke($"{mode,-16} workers {w}: {rates[^1].ImagesPerSecond:F0} images/s, cache {rates[^1].CacheBytes / 1e6:F1} MB, " +
                                $"peak working set {rates[^1].PeakWorkingSetBytes / 1e6:F0} MB");
                }
            return new PipelineBenchResult(images, width, height, imageSize, isDecode, skDecode, resize, fused, rates, Footprint(cfg, log),
                Measure.PeakWorkingSet(), "SkiaSharp 3 codecs (libjpeg-turbo, libpng), first frame, JPEG/PNG only", "Pillow BILINEAR (antialiased) in C#, over the crop's window only");
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>
    /// The in-memory footprint measured on generated images of Imagenette's average size (470x390), extrapolated to
    /// full Imagenette: 9,469 train images kept decoded, 3,925 val images kept as their final 224 crop.
    /// </summary>
    static FootprintEstimate Footprint(TransformConfig cfg, Action<string>? log)
    {
        const int n = 64, w = 470, h = 390;
        string root = Directory.CreateTempSubdirectory("km-foot").FullName;
        try
        {
            foreach (var split in new[] { "train", "val" }) Synthetic.PhotoFolder(root, split, n, classes: 2, w, h);
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            long before = GC.GetTotalMemory(true);
            var train = InMemoryDataset.Build(ImageFolder.Scan(root, "train"), new TrainTransform(cfg), new BadImageLog(), 2);
            var val = InMemoryDataset.Build(ImageFolder.Scan(root, "val"), new ValTransform(cfg), new BadImageLog(), 2);
            long after = GC.GetTotalMemory(true);
            double managedPerImage = (after - before) / (2.0 * n);
            double trainPer = (double)train.Bytes / n, valPer = (double)val.Bytes / n;
            double estimate = 9469 * trainPer + 3925 * valPer;
            var pre = InMemoryDataset.Build(ImageFolder.Scan(root, "train"), new PreResizedTrainTransform(cfg), new BadImageLog(), 2);
            double prePer = (double)pre.Bytes / n, preEstimate = 9469 * prePer + 3925 * valPer;
            log?.Invoke($"in-memory footprint: {trainPer:F0} B per train image ({prePer:F0} B pre-resized), {valPer:F0} B per val image " +
                        $"(managed heap grew {after - before:N0} B for {2 * n}); full Imagenette estimate {estimate / 1e9:F2} GB ({preEstimate / 1e9:F2} GB pre-resized)");
            GC.KeepAlive(train); GC.KeepAlive(val);
            return new FootprintEstimate(w, h, trainPer, valPer, managedPerImage, 9469, 3925, estimate, prePer, preEstimate);
        }
        finally { Directory.Delete(root, true); }
    }
}
