using System.Diagnostics;
using System.Globalization;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Data;
using Keras.MobileNet.Model;
using static TorchSharp.torch;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Training;

/// <summary>Measured cost of one width on this device: seconds per train batch, per eval batch, and per epoch's checkpoint.</summary>
public sealed record StepCost(double Width, double TrainBatchSeconds, double EvalBatchSeconds, double EpochOverheadSeconds);

/// <summary>The size of a run: images, batch, epochs.</summary>
public sealed record RunShape(int TrainImages, int ValImages, int BatchSize, int Epochs, int ImageSize)
{
    public int TrainBatches => (TrainImages + BatchSize - 1) / BatchSize;
    public int ValBatches => (ValImages + BatchSize - 1) / BatchSize;
}

/// <summary>How long a run will take, before it starts: a few steps timed on random input of the run's shape.</summary>
public static class Estimate
{
    /// <summary>Seconds for all epochs of every width, validation and checkpoints included. Pure.</summary>
    public static double WholeSeconds(RunShape shape, IEnumerable<StepCost> widths) =>
        widths.Sum(c => shape.Epochs * (shape.TrainBatches * c.TrainBatchSeconds + shape.ValBatches * c.EvalBatchSeconds + c.EpochOverheadSeconds));

    /// <summary>
    /// Times one width in one pass, as in an epoch: two warm-up train steps (forward, backward, AdamW: the allocator,
    /// the kernels and the threads; with one, the first width of a process read up to 1.9x high), then steps timed one
    /// by one until two are timed and a second has passed (at most 30), their median; the same for evaluation; and one
    /// checkpoint write. Random input: a step costs the same whatever the pixels are. (Between passes Fit hands memory
    /// back to the system; steps timed across passes would pay page faults that an epoch pays once.)
    /// </summary>
    public static StepCost Probe(NetworkSpec spec, Device device, int batch, int imageSize,
        Model.Precision precision = Model.Precision.Fp32, Model.MemoryFormat memoryFormat = Model.MemoryFormat.Auto)
    {
        // Each object has one owner (no dispose scope around the model: its parameters and optimizer state would then
        // have two, the scope and the model).
        using var model = new KerasModel(Factories.MobileNetV2(spec), device, spec.Classes, precision, memoryFormat);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
        using var x = randn(batch, 3, imageSize, imageSize, device: device);
        using var y = randint(0, spec.Classes, [batch], device: device);
        var data = new TimedBatches(x, y, device);
        model.Fit(data, 1);
        double train = data.MedianSeconds;
        model.Evaluate(data);
        double eval = data.MedianSeconds;
        string dir = Directory.CreateTempSubdirectory("km-probe").FullName;
        try
        {
            var clock = Stopwatch.StartNew();
            Checkpoints.Save(model.Network, Path.Combine(dir, "w.safetensors"));
            Checkpoints.SaveOptimizer(model.Optimizer!, Path.Combine(dir, "o.bin"));
            return new StepCost(spec.Width, train, eval, 2 * clock.Elapsed.TotalSeconds); // last + best
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Serves one batch again and again, timing each step from one request to the next, and stops when it has enough.</summary>
    sealed class TimedBatches(Tensor x, Tensor y, Device device) : IBatchSource
    {
        const int Warmup = 2, MinTimed = 2, MaxTimed = 30;
        public int BatchesPerEpoch => Warmup + MinTimed;
        public int Count => (int)x.shape[0] * BatchesPerEpoch;
        public double MedianSeconds { get; private set; }

        public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0)
        {
            var times = new List<double>();
            var total = Stopwatch.StartNew();
            var clock = new Stopwatch();
            for (int i = 0; ; i++)
            {
                Sync();
                if (i > Warmup) times.Add(clock.Elapsed.TotalSeconds);
                if (times.Count >= MaxTimed || (times.Count >= MinTimed && total.Elapsed.TotalSeconds >= 1)) break;
                if (i == Warmup) total.Restart();
                clock.Restart();
                yield return new Batch(x.alias(), y.alias());
            }
            var sorted = times.Order().ToList();
            MedianSeconds = sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
        }

        void Sync() { if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(); }
    }

    /// <summary>
    /// A shorter recipe that fits <paramref name="budgetSeconds"/>: the largest image size (compute scales with its
    /// square) at which at least ten epochs (or all of them, if fewer) fit, else the smallest size with what fits.
    /// Null when the run already fits.
    /// </summary>
    public static (int ImageSize, int Epochs)? Shorter(double estimateSeconds, double budgetSeconds, int imageSize, int epochs)
    {
        if (estimateSeconds <= budgetSeconds) return null;
        int[] sizes = [.. new[] { imageSize, 192, 160, 128, 112, 96 }.Where(s => s <= imageSize && s >= MobileNetV2Spec.MinImageSize).Distinct()];
        int Fit(int size) => (int)Math.Floor(epochs * budgetSeconds / estimateSeconds / Math.Pow((double)size / imageSize, 2));
        foreach (var s in sizes)
            if (Fit(s) >= Math.Min(10, epochs)) return (s, Math.Min(epochs, Fit(s)));
        return (sizes[^1], Math.Max(1, Fit(sizes[^1])));
    }

    public static string Describe(double seconds) => Duration(TimeSpan.FromSeconds(seconds));

    /// <summary>A duration as a person reads it: 4.2s, 3:07, 1:02:03, 2d 5h.</summary>
    public static string Duration(TimeSpan t) =>
        t.TotalDays >= 1 ? $"{(int)t.TotalDays}d {t.Hours}h"
        : t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}"
        : t.TotalMinutes >= 1 ? $"{t.Minutes}:{t.Seconds:00}"
        : t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + "s";

    /// <summary>The estimate's lines: <paramref name="runs"/> has one cost per run (a width trained with several seeds repeats).</summary>
    public static IEnumerable<string> Lines(RunShape shape, IReadOnlyList<StepCost> runs, string device)
    {
        var perWidth = runs.GroupBy(c => c.Width).ToList();
        string seeds = perWidth.Count == runs.Count ? ""
            : perWidth.Select(g => g.Count()).Distinct().Count() == 1 ? $"{perWidth[0].Count()} seeds x " : $"({runs.Count} runs) x ";
        yield return $"estimate: about {Describe(WholeSeconds(shape, runs))} for {perWidth.Count} width(s) x {seeds}{shape.Epochs} epochs " +
                     $"({shape.TrainImages:N0} train + {shape.ValImages:N0} val images, batch {shape.BatchSize}, {shape.ImageSize} px) on {device}";
        foreach (var c in perWidth.Select(g => g.First()))
            yield return $"  width {c.Width.ToString(CultureInfo.InvariantCulture)}: {c.TrainBatchSeconds:F3} s per train batch, " +
                         $"{c.EvalBatchSeconds:F3} s per val batch, measured just now";
    }
}
