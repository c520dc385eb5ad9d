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
/// mobilenet_v2 of the same width, in one process, measured in alternating rounds so drift hits both alike.
/// </summary>
public static class TrainBench
{
    public static TrainBenchResult Run(Device device, IReadOnlyList<double> widths, int batch, int imageSize, int steps, int warmup, int rounds,
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
            var (trainA, trainB, inferA, inferB) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            using var optA = optim.AdamW(a.parameters(), 1e-3, weight_decay: 0);
            using var optB = optim.AdamW(b.parameters(), 1e-3, weight_decay: 0);
            for (int r = 0; r < rounds; r++)
            {
                // Alternate which network goes first in each round.
                foreach (var first in new[] { r % 2 == 0, r % 2 != 0 })
                {
                    var (net, opt, train, infer) = first ? (a, optA, trainA, inferA) : (b, optB, trainB, inferB);
                    train.Add(TrainRate(net, opt, x, y, device, r == 0 ? warmup : 1, steps, minSeconds));
                    infer.Add(InferRate(net, x, device, r == 0 ? warmup : 1, steps, minSeconds));
                }
            }
            var o = new StepResult("ours", w, batch, imageSize, Measure.Median(trainA), Measure.Median(inferA));
            var t = new StepResult("torchvision", w, batch, imageSize, Measure.Median(trainB), Measure.Median(inferB));
            ours.Add(o);
            theirs.Add(t);
            log?.Invoke($"width {w}: train {o.TrainImagesPerSecond:F1} vs {t.TrainImagesPerSecond:F1} img/s ({o.TrainImagesPerSecond / t.TrainImagesPerSecond:F3}x), " +
                        $"inference {o.InferImagesPerSecond:F1} vs {t.InferImagesPerSecond:F1} img/s ({o.InferImagesPerSecond / t.InferImagesPerSecond:F3}x)");
        }
        return new TrainBenchResult(device.ToString(), ours, theirs, Measure.PeakWorkingSet(), sampler.MaxDevice);
    }

    /// <summary>
    /// Images per second over at least <paramref name="steps"/> steps and at least <paramref name="minSeconds"/>:
    /// a window of a few milliseconds (small widths on a GPU) is at the mercy of one GC pause or launch hiccup.
    /// </summary>
    static double Timed(Action step, long batch, Device device, int warmup, int steps, double minSeconds)
    {
        for (int i = 0; i < warmup; i++) step();
        Measure.Sync(device);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int done = 0;
        while (done < steps || clock.Elapsed.TotalSeconds < minSeconds)
        {
            for (int i = 0; i < steps; i++) step();
            done += steps;
            Measure.Sync(device);
        }
        return done * batch / clock.Elapsed.TotalSeconds;
    }

    static double TrainRate(nn.Module<Tensor, Tensor> net, optim.Optimizer opt, Tensor x, Tensor y, Device device, int warmup, int steps, double minSeconds)
    {
        net.train();
        void Step()
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(net.forward(x), y, label_smoothing: 0.1);
            loss.backward();
            opt.step();
        }
        return Timed(Step, x.shape[0], device, warmup, steps, minSeconds);
    }

    static double InferRate(nn.Module<Tensor, Tensor> net, Tensor x, Device device, int warmup, int steps, double minSeconds)
    {
        net.eval();
        using var _ = no_grad();
        void Step()
        {
            using var scope = NewDisposeScope();
            net.forward(x);
        }
        return Timed(Step, x.shape[0], device, warmup, steps, minSeconds);
    }
}
