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

public sealed record EpochBenchResult(string Device, double Width, int Batch, int Images, int Steps, double PureStepSeconds,
    double PipelineEpochSeconds, double Ratio, IReadOnlyList<EpochMemory> Epochs, long? PeakDeviceBytes);

/// <summary>
/// One real epoch through the full pipeline (generated JPEGs, in memory, the notebook's train transform) against the
/// same epoch's batches made in advance and run as plain train steps: how much of the step time the pipeline hides.
/// Further epochs show whether memory grows.
/// </summary>
public static class EpochBench
{
    public static EpochBenchResult Run(Device device, double width, int batch, int images, int epochs, int workers, int imageSize = 224,
        Action<string>? log = null, Precision precision = Precision.Fp32, MemoryFormat memoryFormat = MemoryFormat.Auto)
    {
        string root = Directory.CreateTempSubdirectory("km-epoch").FullName;
        try
        {
            Synthetic.PhotoFolder(root, "train", images, classes: 10, 500, 375);
            var cfg = TransformConfig.For(imageSize);
            var ds = InMemoryDataset.Build(ImageFolder.Scan(root, "train"), new TrainTransform(cfg), new BadImageLog(), workers);
            var handed = new HandOffCounter();
            var loader = new DataLoader(ds, batch, shuffle: true, seed: 0, workers, device) { HandOffs = handed };
            manual_seed(0);
            using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, width, 10)), device, 10, precision, memoryFormat);
            model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
            int steps = loader.BatchesPerEpoch;
            using var sampler = new Measure.PeakSampler(device.type == DeviceType.CUDA);

            // Warm-up (allocator, kernels) on one random batch.
            model.Fit(new TensorData(randn(batch, 3, imageSize, imageSize, device: device), randint(0, 10, [batch], device: device), batch), 1);
            var memory = new List<EpochMemory>();
            var probe = new EpochProbe(memory, handed);
            var pureTimes = new List<double>();
            // Alternate: the epoch's own batches made in advance (same images, same augmentation, on the device), then
            // the same epoch through the pipeline. Identical epochs differ by several percent on a noisy machine, so
            // the medians of the pairs are compared.
            for (int e = 0; e < epochs; e++)
            {
                var premade = loader.Epoch(e).ToList();
                Measure.Sync(device);
                var clock = Stopwatch.StartNew();
                model.Fit(new PreMade(premade), 1);
                Measure.Sync(device);
                pureTimes.Add(clock.Elapsed.TotalSeconds);
                foreach (var b in premade) b.Dispose();
                model.Fit(loader, e + 1, callbacks: [probe], initialEpoch: e);
            }
            double pureSeconds = Measure.Median(pureTimes), epochSeconds = Measure.Median(memory.Select(m => m.Seconds));
            double ratio = epochSeconds / pureSeconds;
            log?.Invoke($"{steps} steps of batch {batch}, median of {epochs}: pure {pureSeconds:F2} s, through the pipeline {epochSeconds:F2} s ({ratio:F3}x); " +
                        $"pure: {string.Join(" ", pureTimes.Select(t => t.ToString("F2")))}");
            foreach (var m in memory)
                log?.Invoke($"epoch {m.Epoch}: {m.Seconds:F2} s, peak working set {m.PeakWorkingSetBytes / 1e6:F1} MB, live tensors {m.LiveTensors} " +
                            $"(dispose-scope statistics: {m.LiveTensorsByDisposeScopeStatistics})");
            if (memory.Count >= 5)
                log?.Invoke($"peak working set, epoch 5 vs epoch 2: {100.0 * (memory[4].PeakWorkingSetBytes - memory[1].PeakWorkingSetBytes) / memory[1].PeakWorkingSetBytes:+0.0;-0.0}%");
            return new EpochBenchResult(device.ToString(), width, batch, images, steps, pureSeconds, epochSeconds, ratio, memory, sampler.MaxDevice);
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
