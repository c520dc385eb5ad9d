using System.Diagnostics;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Data;
using Keras.MobileNet.Model;
using Keras.MobileNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Bench;

public sealed record EpochMemory(int Epoch, double Seconds, long PeakWorkingSetBytes, long LiveTensorsOnTrainingThread);

public sealed record EpochBenchResult(string Device, double Width, int Batch, int Images, int Steps, double PureStepSeconds,
    double PipelineEpochSeconds, double Ratio, IReadOnlyList<EpochMemory> Epochs, long? PeakDeviceBytes);

/// <summary>
/// One real epoch through the full pipeline (generated JPEGs, in memory, the notebook's train transform) against the
/// same number of train steps on a pre-made batch: how much of the step time the pipeline hides. Further epochs show
/// whether memory grows.
/// </summary>
public static class EpochBench
{
    public static EpochBenchResult Run(Device device, double width, int batch, int images, int epochs, int workers, int imageSize = 224,
        Action<string>? log = null)
    {
        string root = Directory.CreateTempSubdirectory("km-epoch").FullName;
        try
        {
            for (int c = 0; c < 10; c++) Directory.CreateDirectory(Path.Combine(root, "train", $"c{c}"));
            Parallel.For(0, images, i => File.WriteAllBytes(Path.Combine(root, "train", $"c{i % 10}", $"{i:D5}.jpg"), Synthetic.PhotoJpeg(500, 375, i)));
            var cfg = TransformConfig.For(imageSize);
            var ds = InMemoryDataset.Build(ImageFolder.Scan(root, "train"), new TrainTransform(cfg), new BadImageLog(), workers);
            var loader = new DataLoader(ds, batch, shuffle: true, seed: 0, workers, device);
            manual_seed(0);
            using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, width, 10)), device, 10);
            model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
            int steps = loader.BatchesPerEpoch;
            using var sampler = new Measure.PeakSampler(device.type == DeviceType.CUDA);

            // Warm-up on the real path (allocator, kernels), then the pure steps on one pre-made batch.
            model.Fit(new TensorData(randn(batch, 3, imageSize, imageSize, device: device), randint(0, 10, [batch], device: device), batch), 1);
            var first = loader.MakeBatch(0, Enumerable.Range(0, batch).ToArray());
            var pure = new RepeatBatch(first, steps);
            Measure.Sync(device);
            var clock = Stopwatch.StartNew();
            model.Fit(pure, 1);
            Measure.Sync(device);
            double pureSeconds = clock.Elapsed.TotalSeconds;
            first.Dispose();

            var memory = new List<EpochMemory>();
            var probe = new EpochProbe(memory);
            clock.Restart();
            model.Fit(loader, epochs, callbacks: [probe]);
            double epochSeconds = memory[0].Seconds;
            double ratio = epochSeconds / pureSeconds;
            log?.Invoke($"{steps} steps of batch {batch}: pure {pureSeconds:F2} s, through the pipeline {epochSeconds:F2} s ({ratio:F3}x)");
            foreach (var m in memory)
                log?.Invoke($"epoch {m.Epoch}: {m.Seconds:F2} s, peak working set {m.PeakWorkingSetBytes / 1e6:F1} MB, live tensors {m.LiveTensorsOnTrainingThread}");
            return new EpochBenchResult(device.ToString(), width, batch, images, steps, pureSeconds, epochSeconds, ratio, memory, sampler.MaxDevice);
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>The same batch served every step (aliases, so the consumer's Dispose leaves the original alive).</summary>
    sealed class RepeatBatch(Batch batch, int steps) : IBatchSource
    {
        public int BatchesPerEpoch => steps;
        public int Count => steps * batch.Count;
        public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0)
        {
            for (int i = skipBatches; i < steps; i++) yield return new Batch(batch.Images.alias(), batch.Labels.alias());
        }
    }

    /// <summary>Per epoch: wall time, peak working set during that epoch, and TorchSharp's live-tensor count.</summary>
    sealed class EpochProbe(List<EpochMemory> into) : Callback
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
            into.Add(new EpochMemory(epoch + 1, s, sampler!.Max, DisposeScopeManager.Statistics.ThreadTotalLiveCount));
            sampler.Dispose();
        }
    }
}
