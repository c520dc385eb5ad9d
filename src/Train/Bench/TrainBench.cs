using Keras.MobileNet.Architecture;
using Keras.MobileNet.Model;
using TorchSharp;
using static TorchSharp.torch;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Bench;

public sealed record StepResult(string Network, double Width, int Batch, int ImageSize, double TrainImagesPerSecond, double InferImagesPerSecond);

/// <summary>What our side of the benchmark uses: precision, layout and optimizer (the baseline stays fp32, NCHW, per-parameter AdamW).</summary>
public sealed record OursConfig(Precision Precision = Precision.Fp32, MemoryFormat MemoryFormat = MemoryFormat.Auto, bool PerParameterAdamW = false);

/// <summary>
/// Where one train step of ours goes, medians in milliseconds: each phase synchronised (device time included), and
/// the host's own time to issue a whole step with no synchronisation until its end (on a GPU: launch overhead).
/// </summary>
public sealed record StepBreakdown(double Width, double ForwardMs, double BackwardMs, double OptimizerMs, double StepMs, double HostSubmitMs);

public sealed record TrainBenchResult(string Device, IReadOnlyList<StepResult> Ours, IReadOnlyList<StepResult> Baseline, long PeakWorkingSetBytes,
    long? PeakDeviceBytes, OursConfig? Config = null, IReadOnlyList<StepBreakdown>? Breakdown = null)
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
        Func<double, int, nn.Module<Tensor, Tensor>> baseline, Action<string>? log = null, double minSeconds = 0.5, OursConfig? config = null)
    {
        config ??= new OursConfig();
        var format = Layouts.Resolve(config.MemoryFormat, device);
        var breakdown = new List<StepBreakdown>();
        var ours = new List<StepResult>();
        var theirs = new List<StepResult>();
        using var sampler = new Measure.PeakSampler(device.type == DeviceType.CUDA);
        foreach (var w in widths)
        {
            manual_seed(0);
            using var a = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, w, 10));
            a.to(device);
            Layouts.Apply(a, config.Precision, format);
            manual_seed(0);
            using var b = baseline(w, 10);
            b.to(device);
            using var x = randn(batch, 3, imageSize, imageSize, device: device);
            using var y = randint(0, 10, [batch], device: device);
            using var xa = format == MemoryFormat.ChannelsLast ? Layouts.ChannelsLast(x) : x.alias();
            using var optA = Engine.Optimizers.AdamW(1e-3, 0, perParameter: config.PerParameterAdamW)(a.parameters());
            using var optB = optim.AdamW(b.parameters(), 1e-3, weight_decay: 0);
            a.train(); b.train();
            var (trainA, trainB) = Paired(() => TrainStep(a, optA, xa, y), () => TrainStep(b, optB, x, y), batch, device, warmup, pairs, minSeconds);
            a.eval(); b.eval();
            double inferA, inferB;
            using (no_grad())
                (inferA, inferB) = Paired(() => InferStep(a, xa), () => InferStep(b, x), batch, device, warmup, pairs, minSeconds);
            a.train();
            breakdown.Add(Breakdown(a, optA, xa, y, device, w, Math.Clamp(pairs / 2, 3, 10)));
            var o = new StepResult("ours", w, batch, imageSize, trainA, inferA);
            var t = new StepResult("torchvision", w, batch, imageSize, trainB, inferB);
            ours.Add(o);
            theirs.Add(t);
            log?.Invoke($"width {w}: train {o.TrainImagesPerSecond:F1} vs {t.TrainImagesPerSecond:F1} img/s ({o.TrainImagesPerSecond / t.TrainImagesPerSecond:F3}x), " +
                        $"inference {o.InferImagesPerSecond:F1} vs {t.InferImagesPerSecond:F1} img/s ({o.InferImagesPerSecond / t.InferImagesPerSecond:F3}x)");
        }
        return new TrainBenchResult(device.ToString(), ours, theirs, Measure.PeakWorkingSet(), sampler.MaxDevice, config with { MemoryFormat = format }, breakdown);
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

    /// <summary>Medians over <paramref name="steps"/> steps of each phase (synchronised), and of the host's unsynchronised step.</summary>
    static StepBreakdown Breakdown(nn.Module<Tensor, Tensor> net, optim.Optimizer opt, Tensor x, Tensor y, Device device, double width, int steps)
    {
        var (fw, bw, op, total, host) = (new List<double>(), new List<double>(), new List<double>(), new List<double>(), new List<double>());
        for (int i = 0; i < steps; i++)
        {
            using (var scope = NewDisposeScope())
            {
                Measure.Sync(device);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                opt.zero_grad();
                var loss = nn.functional.cross_entropy(net.forward(x), y, label_smoothing: 0.1);
                Measure.Sync(device);
                double t1 = clock.Elapsed.TotalMilliseconds;
                loss.backward();
                Measure.Sync(device);
                double t2 = clock.Elapsed.TotalMilliseconds;
                opt.step();
                Measure.Sync(device);
                double t3 = clock.Elapsed.TotalMilliseconds;
                fw.Add(t1);
                bw.Add(t2 - t1);
                op.Add(t3 - t2);
                total.Add(t3);
            }
            Measure.Sync(device);
            var h = System.Diagnostics.Stopwatch.StartNew();
            TrainStep(net, opt, x, y); // no synchronisation inside: what the host spends issuing the work
            host.Add(h.Elapsed.TotalMilliseconds);
            Measure.Sync(device);
        }
        return new StepBreakdown(width, Measure.Median(fw), Measure.Median(bw), Measure.Median(op), Measure.Median(total), Measure.Median(host));
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
