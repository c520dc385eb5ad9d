using System.Diagnostics;
using Keras.MobileNet.Export;
using Keras.MobileNet.Model;
using static TorchSharp.torch;

using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Bench;

public sealed record OnnxBenchRow(double Width, int Batch, double TorchSharpImagesPerSecond, double OrtFoldedImagesPerSecond,
    double OrtBatchNormImagesPerSecond, double OrtInt8ImagesPerSecond);

/// <summary>
/// CPU inference images/s of one network four ways, in one process with the calls interleaved: TorchSharp (eval,
/// no_grad), ONNX Runtime on the export with BatchNorm folded, on the export with BatchNormalization nodes, and on the
/// int8 export (<c>export --int8</c>, calibrated on random images: the speed does not depend on the ranges).
/// </summary>
public static class OnnxBench
{
    public static List<OnnxBenchRow> Run(IReadOnlyList<double> widths, IReadOnlyList<int> batches, int imageSize, int rounds, Action<string>? log = null)
    {
        string dir = Directory.CreateTempSubdirectory("km-onnx-bench").FullName;
        var rows = new List<OnnxBenchRow>();
        try
        {
            foreach (double width in widths)
            {
                var card = new ModelCard(Architecture.Preset.Paper, width, 1000, [.. Enumerable.Range(0, 1000).Select(i => $"c{i}")],
                    [.. Enumerable.Range(0, 1000).Select(i => $"c{i}")], imageSize, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], 0.2);
                manual_seed(0);
                using var net = Factories.MobileNetV2(card.Spec());
                net.eval();
                string folded = Path.Combine(dir, "folded.onnx"), bn = Path.Combine(dir, "bn.onnx");
                OnnxExport.Write(folded, card, net, new OnnxOptions());
                OnnxExport.Write(bn, card, net, new OnnxOptions(FoldBatchNorm: false));
                string int8 = Path.Combine(dir, "int8.onnx");
                Int8.Write(int8, card, net, new OnnxOptions(), () => Enumerable.Range(0, 2).Select(i => { manual_seed(100 + i); return randn(8, 3, imageSize, imageSize); }));
                using var ortInt8 = OnnxModel.Load(int8, threads: Environment.ProcessorCount);
                using var ortFolded = OnnxModel.Load(folded, threads: Environment.ProcessorCount);
                using var ortBn = OnnxModel.Load(bn, threads: Environment.ProcessorCount);
                foreach (int batch in batches)
                {
                    manual_seed(1);
                    using var x = randn(batch, 3, imageSize, imageSize);
                    var input = x.data<float>().ToArray();
                    var ways = new (string Name, Action Run)[]
                    {
                        ("TorchSharp", () => { using (no_grad()) using (var y = net.forward(x)) y.data<float>().ToArray(); }),
                        ("ORT folded", () => ortFolded.Logits(input, batch, imageSize, imageSize)),
                        ("ORT BN nodes", () => ortBn.Logits(input, batch, imageSize, imageSize)),
                        ("ORT int8", () => ortInt8.Logits(input, batch, imageSize, imageSize)),
                    };
                    var times = ways.Select(_ => new List<double>()).ToArray();
                    foreach (var w in ways) { w.Run(); w.Run(); } // warm-up
                    for (int r = 0; r < rounds; r++)
                        for (int i = 0; i < ways.Length; i++) // interleaved: the machine's drift hits all three alike
                        {
                            var clock = Stopwatch.StartNew();
                            ways[i].Run();
                            times[i].Add(clock.Elapsed.TotalSeconds);
                        }
                    var rate = times.Select(t => batch / Measure.Median(t)).ToArray();
                    rows.Add(new OnnxBenchRow(width, batch, rate[0], rate[1], rate[2], rate[3]));
                    log?.Invoke($"width {width} batch {batch}: TorchSharp {rate[0]:F1} img/s, ONNX Runtime folded {rate[1]:F1} ({rate[1] / rate[0]:F2}x), " +
                                $"with BatchNormalization nodes {rate[2]:F1} ({rate[2] / rate[0]:F2}x), int8 {rate[3]:F1} ({rate[3] / rate[1]:F2}x folded float32); median of {rounds}");
                }
            }
            return rows;
        }
        finally { Directory.Delete(dir, true); }
    }
}
