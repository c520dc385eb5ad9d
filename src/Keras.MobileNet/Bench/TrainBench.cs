using Keras.MobileNet.Architecture;
using Keras.MobileNet.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Bench;

public sealed record StepResult(string Network, double Width, int Batch, int ImageSize, double TrainImagesPerSecond, double InferImagesPerSecond);

public sealed record TrainBenchResult(string Device, IReadOnlyList<StepResult> Ours, IReadOnlyList<StepResult> Baseline, long PeakWorkingSetBytes,
    long? PeakDeviceBytes)
{
    public IEnumerable<(double Width, double TrainRatio, double InferRatio)> Ratios() =>
        Ours.Zip(Baseline, (o, b) => (o.Width, o.TrainImagesPerSecond / b.TrainImagesPerSecond, o.InferImagesPerSecond / b.InferImagesPerSecond));
}

/// <summary>
/// Train step (forward, backward, AdamW step) and inference throughput of our network against TorchVision.NET's
/// mobilenet_v2 of the same width, in one process. The two are timed step by step in pairs whose order alternates
/// (A B, B A, ...) and compared by their median step: a machine whose speed drifts over seconds affects both alike.
/// </summary>
public static class TrainBench
{
    public static TrainBenchResult Run(Device device, IReadOnlyList<double> widths, int batch, int imageSize, int pairs, int warmup,
        Func<double, int, nn.Module<Tensor, Tensor>> baseline, Action<string>? log = null, double minSeconds = 0.5)
    {
        var ours = new List<StepResult>();
        var theirs = new List<StepResult>();
        using var sampler = new Measure.PeakSampler(device.type == DeviceType.CUDA);
        foreach (var w in widths)
        {
            manual_seed(0);
            using var a = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, w, 10));
            a.to(device);
            manual_seed(0);
            using var b = baseline(w, 10);
            b.to(device);
            using var x = randn(batch, 3, imageSize, imageSize, device: device);
            using var y = randint(0, 10, [batch], device: device);
            using var optA = optim.AdamW(a.parameters(), 1e-3, weight_decay: 0);
            using var optB = optim.AdamW(b.parameters(), 1e-3, weight_decay: 0);
            a.train(); b.train();
            var (trainA, trainB) = Paired(() => TrainStep(a, optA, x, y), () => TrainStep(b, optB, x, y), batch, device, warmup, pairs, minSeconds);
            a.eval(); b.eval();
            double inferA, inferB;
            using (no_grad())
                (inferA, inferB) = Paired(() => InferStep(a, x), () => InferStep(b, x), batch, device, warmup, pairs, minSeconds);
            var o = new StepResult("ours", w, batch, imageSize, trainA, inferA);
            var t = new StepResult("torchvision", w, batch, imageSize, trainB, inferB);
            ours.Add(o);
            theirs.Add(t);
            log?.Invoke($"width {w}: train {o.TrainImagesPerSecond:F1} vs {t.TrainImagesPerSecond:F1} img/s ({o.TrainImagesPerSecond / t.TrainImagesPerSecond:F3}x), " +
                        $"inference {o.InferImagesPerSecond:F1} vs {t.InferImagesPerSecond:F1} img/s ({o.InferImagesPerSecond / t.InferImagesPerSecond:F3}x)");
        }
        return new TrainBenchResult(device.ToString(), ours, theirs, Measure.PeakWorkingSet(), sampler.MaxDevice);
    }

    /// <summary>Images per second of A and B from the medians of their individually timed, interleaved steps.</summary>
    static (double A, double B) Paired(Action stepA, Action stepB, long batch, Device device, int warmup, int pairs, double minSeconds)
    {
        for (int i = 0; i < warmup; i++) { stepA(); stepB(); }
        Measure.Sync(device);
        var times = new[] { new List<double>(), new List<double>() };
        var steps = new[] { stepA, stepB };
        var total = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < pairs || total.Elapsed.TotalSeconds < 2 * minSeconds; i++)
            foreach (int which in i % 2 == 0 ? new[] { 0, 1 } : [1, 0])
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                steps[which]();
                Measure.Sync(device);
                times[which].Add(clock.Elapsed.TotalSeconds);
            }
        return (batch / Measure.Median(times[0]), batch / Measure.Median(times[1]));
    }

    static void TrainStep(nn.Module<Tensor, Tensor> net, optim.Optimizer opt, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        opt.zero_grad();
        var loss = nn.functional.cross_entropy(net.forward(x), y, label_smoothing: 0.1);
        loss.backward();
        opt.step();
    }

    static void InferStep(nn.Module<Tensor, Tensor> net, Tensor x)
    {
        using var scope = NewDisposeScope();
        net.forward(x);
    }
}
