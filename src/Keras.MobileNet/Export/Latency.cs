using System.Diagnostics;
using System.Runtime.InteropServices;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Keras.MobileNet.Export;

/// <summary>Measures a network's CPU latency in ONNX Runtime (<see cref="MeasuredLatency"/>).</summary>
public static class Latency
{
    /// <summary>
    /// Measures <paramref name="network"/> (the card's spec) in float32 at batch 1 and the card's image size: after a
    /// warm-up, at least <paramref name="runs"/> passes and at least <paramref name="seconds"/> of them (a small network's
    /// 30 passes take milliseconds, too few to be stable), at most 5,000.
    /// </summary>
    public static MeasuredLatency Measure(ModelCard card, nn.Module network, int runs = 30, int warmup = 10, double seconds = 1.0)
    {
        using var ort = OrtForward.FromNetwork(card, network);
        return Measure(ort, card.ImageSize, "onnxruntime-cpu-fp32", runs, warmup, seconds);
    }

    /// <summary>
    /// As <see cref="Measure(ModelCard, nn.Module, int, int, double)"/>, of the int8 model that <c>export --int8</c>
    /// writes with <paramref name="options"/>, its ranges calibrated on <paramref name="calibration"/>.
    /// </summary>
    public static MeasuredLatency MeasureInt8(ModelCard card, nn.Module network, Func<IEnumerable<Tensor>> calibration, Int8Options? options = null,
        int runs = 30, int warmup = 10, double seconds = 1.0)
    {
        var (model, _) = Int8.Quantize(OnnxExport.Build(card, network, new OnnxOptions()), calibration, options);
        using var ort = OrtForward.FromModel(model);
        return Measure(ort, card.ImageSize, $"onnxruntime-cpu-int8-{Files.Word((options ?? new Int8Options()).Weights)}", runs, warmup, seconds);
    }

    static MeasuredLatency Measure(OrtForward ort, int imageSize, string engine, int runs, int warmup, double seconds)
    {
        using var x = randn(1, 3, imageSize, imageSize);
        var ms = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < warmup || ms.Count < runs || total.Elapsed.TotalSeconds < seconds && ms.Count < 5000; i++)
        {
            var clock = Stopwatch.StartNew();
            ort.Forward(x).Dispose();
            if (i >= warmup) ms.Add(clock.Elapsed.TotalMilliseconds);
        }
        ms.Sort();
        return new MeasuredLatency(Math.Round(ms[ms.Count / 2], 3), Math.Round(ms[(int)(ms.Count * 0.9)], 3), 1, imageSize,
            engine, CpuName(), get_num_threads(), ms.Count);
    }

    /// <summary>The CPU's model name (/proc/cpuinfo on Linux), else the architecture.</summary>
    public static string CpuName()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int i and > 0)
                        return line[(i + 1)..].Trim();
        }
        catch (IOException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
