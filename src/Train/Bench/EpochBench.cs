using System.Diagnostics;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using Keras.MobileNet.Model;
using TorchSharp;
using static TorchSharp.torch;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Bench;

/// <param name="LiveTensors">TorchSharp's <c>Tensor.TotalCount</c>.</param>
/// <param name="LiveTensorsByDisposeScopeStatistics">The training thread's dispose-scope statistics (ThreadTotalLiveCount) plus the
/// tensors the loader's thread handed to it (<see cref="HandOffCounter"/>).</param>
public sealed record EpochMemory(int Epoch, double Seconds, long PeakWorkingSetBytes, long LiveTensors, long LiveTensorsByDisposeScopeStatistics);

/// <summary>One pipeline path's epochs: <see cref="Ratio"/> = its median epoch over the median pure-step epoch (1.0 = the pipeline costs nothing).</summary>
public sealed record EpochPath(string Path, double Seconds, double Ratio, long CacheBytes, IReadOnlyList<EpochMemory> Epochs);

public sealed record EpochBenchResult(string Device, double Width, int Batch, int Images, int Steps, double PureStepSeconds,
    IReadOnlyList<EpochPath> Paths, long? PeakDeviceBytes)
{
    /// <summary>The first path's (the default: today's host path) numbers.</summary>
    public double PipelineEpochSeconds => Paths[0].Seconds;
    public double Ratio => Paths[0].Ratio;
}

/// <summary>
/// One real epoch through the full pipeline (generated JPEGs, in memory, the notebook's train transform) against the
/// same epoch's batches made in advance and run as plain train steps: how much of the step time the pipeline hides,
/// for each path asked: <c>decoded</c> (decoded images, a resize per sample on the host), <c>resized</c> (each image
/// resized once, per sample on the host), <c>gather</c> (those images on the training device, one gather per batch).
/// All give the same batches. Further epochs show whether memory grows.
/// </summary>
public static class EpochBench
{
    public static EpochBenchResult Run(Device device, double width, int batch, int images, int epochs, int workers, int imageSize = 224,
        Action<string>? log = null, Precision precision = Precision.Fp32, MemoryFormat memoryFormat = MemoryFormat.Auto,
        IReadOnlyList<string>? paths = null)
    {
        paths ??= ["decoded"];
        if (paths.Count == 0) throw new ArgumentException("--paths needs at least one of decoded, resized, gather");
        if (paths.FirstOrDefault(p => p is not ("decoded" or "resized" or "gather")) is { } unknown)
            throw new ArgumentException($"--paths: '{unknown}' is not one of decoded, resized, gather");
        string root = Directory.CreateTempSubdirectory("km-epoch").FullName;
        try
        {
            Synthetic.PhotoFolder(root, "train", images, classes: 10, 500, 375);
            var cfg = TransformConfig.For(imageSize);
            var split = ImageFolder.Scan(root, "train");
            var handed = new HandOffCounter();
            var decodedDs = InMemoryDataset.Build(split, new TrainTransform(cfg), new BadImageLog(), workers);
            var resizedDs = paths.Any(p => p != "decoded") ? InMemoryDataset.Build(split, new PreResizedTrainTransform(cfg), new BadImageLog(), workers) : null;
            using var gather = paths.Contains("gather") ? GatherCache.Build(resizedDs!, device, Layouts.Resolve(memoryFormat, device) == MemoryFormat.ChannelsLast) : null;
            DataLoader Loader(string path) => path switch
            {
                "decoded" => new DataLoader(decodedDs, batch, shuffle: true, seed: 0, workers, device) { HandOffs = handed },
                "resized" => new DataLoader(resizedDs!, batch, shuffle: true, seed: 0, workers, device) { HandOffs = handed },
                _ => new DataLoader(resizedDs!, batch, shuffle: true, seed: 0, workers, device) { HandOffs = handed, Gather = gather },
            };
            var loaders = paths.Select(Loader).ToList();
            long CacheBytes(string path) => path switch { "decoded" => decodedDs.Bytes, "resized" => resizedDs!.Bytes, _ => gather!.Bytes };
            manual_seed(0);
            using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, width, 10)), device, 10, precision, memoryFormat);
            model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
            int steps = loaders[0].BatchesPerEpoch;
            using var sampler = new Measure.PeakSampler(device.type == DeviceType.CUDA);

            // Warm-up (allocator, kernels) on one random batch.
            model.Fit(new TensorData(randn(batch, 3, imageSize, imageSize, device: device), randint(0, 10, [batch], device: device), batch), 1);
            var memory = paths.Select(_ => new List<EpochMemory>()).ToList();
            var pureTimes = new List<double>();
            // Alternate: the epoch's own batches made in advance (same images, same augmentation, on the device), then
            // the same epoch through each path. Identical epochs differ by several percent on a noisy machine, so the
            // medians are compared.
            for (int e = 0; e < epochs; e++)
            {
                var premade = loaders[0].Epoch(e).ToList();
                Measure.Sync(device);
                var clock = Stopwatch.StartNew();
                model.Fit(new PreMade(premade), 1);
                Measure.Sync(device);
                pureTimes.Add(clock.Elapsed.TotalSeconds);
                foreach (var b in premade) b.Dispose();
                for (int i = 0; i < loaders.Count; i++)
                    model.Fit(loaders[i], e + 1, callbacks: [new EpochProbe(memory[i], handed)], initialEpoch: e);
            }
            double pureSeconds = Measure.Median(pureTimes);
            var results = paths.Select((path, i) =>
            {
                double seconds = Measure.Median(memory[i].Select(m => m.Seconds));
                return new EpochPath(path, seconds, seconds / pureSeconds, CacheBytes(path), memory[i]);
            }).ToList();
            log?.Invoke($"{steps} steps of batch {batch}, median of {epochs}: pure {pureSeconds:F2} s; pure: {string.Join(" ", pureTimes.Select(t => t.ToString("F2")))}");
            foreach (var r in results)
            {
                log?.Invoke($"{r.Path,-8} {r.Seconds:F2} s ({r.Ratio:F3}x the pure steps), images cached {r.CacheBytes / 1e6:F1} MB");
                foreach (var m in r.Epochs)
                    log?.Invoke($"  epoch {m.Epoch}: {m.Seconds:F2} s, peak working set {m.PeakWorkingSetBytes / 1e6:F1} MB, live tensors {m.LiveTensors} " +
                                $"(dispose-scope statistics: {m.LiveTensorsByDisposeScopeStatistics})");
                if (r.Epochs.Count >= 5)
                    log?.Invoke($"  peak working set, epoch 5 vs epoch 2: {100.0 * (r.Epochs[4].PeakWorkingSetBytes - r.Epochs[1].PeakWorkingSetBytes) / r.Epochs[1].PeakWorkingSetBytes:+0.0;-0.0}%");
            }
            return new EpochBenchResult(device.ToString(), width, batch, images, steps, pureSeconds, results, sampler.MaxDevice);
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>Batches made in advance, served as aliases (the consumer's Dispose leaves the originals alive).</summary>
    sealed class PreMade(List<Batch> batches) : IBatchSource
    {
        public int BatchesPerEpoch => batches.Count;
        public int Count => batches.Sum(b => b.Count);
        public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0) =>
            batches.Skip(skipBatches).Select(b => new Batch(b.Images.alias(), b.Labels.alias()));
    }

    /// <summary>Per epoch: wall time, peak working set during that epoch, and TorchSharp's live-tensor counts.</summary>
    sealed class EpochProbe(List<EpochMemory> into, HandOffCounter handed) : Callback
    {
        Measure.PeakSampler? sampler;
        readonly Stopwatch clock = new();

        public override void OnEpochBegin(int epoch, Logs logs)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            sampler = new Measure.PeakSampler();
            clock.Restart();
        }

        public override void OnEpochEnd(int epoch, Logs logs)
        {
            double s = clock.Elapsed.TotalSeconds;
            into.Add(new EpochMemory(epoch + 1, s, sampler!.Max, Tensor.TotalCount, DisposeScopeManager.Statistics.ThreadTotalLiveCount + handed.Count));
            sampler.Dispose();
        }
    }
}
