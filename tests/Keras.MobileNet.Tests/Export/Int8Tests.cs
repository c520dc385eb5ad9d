using Keras.MobileNet.Export;

namespace Keras.MobileNet.Tests;

/// <summary>int8 export: a QDQ graph ONNX Runtime runs, with per-channel weights and percentile-calibrated activations.</summary>
public class Int8Tests() : WithTempDir("km-int8-")
{
    static (ModelCard Card, MobileNetV2 Net) Network(int size)
    {
        var card = new ModelCard(Preset.Paper, 0.5, 4, ["a", "b", "c", "d"], ["a", "b", "c", "d"], size, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], 0.2);
        manual_seed(3);
        var net = Factories.MobileNetV2(card.Spec());
        TinyModel.RandomStatistics(net, 5);
        net.eval();
        return (card, net);
    }

    [TestCase(Int8Weights.S7, 63)]
    [TestCase(Int8Weights.U8, 127)]
    public void The_int8_model_is_QDQ_with_per_channel_weights_and_gives_the_float_models_logits_closely(Int8Weights format, int steps)
    {
        var (card, net) = Network(64);
        using var _ = net;
        TestData.ImageFolder(dir, ["a", "b"], 24, 1, 96, 80);
        var (batches, images, skipped) = Calibration.FromFolder(Path.Combine(dir, "train"), card, 32);
        Assert.That((images, skipped), Is.EqualTo((32, 0)));
        string fp32 = Path.Combine(dir, "m.onnx"), int8 = Path.Combine(dir, "m8.onnx");
        OnnxExport.Write(fp32, card, net, new OnnxOptions());
        var ranges = Int8.Write(int8, card, net, new OnnxOptions(), batches, new Int8Options(Weights: format));
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(int8));
        var graph = model.Graph;
        var floats = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(fp32)).Graph.Initializer.ToDictionary(t => t.Name);
        int convs = graph.Node.Count(n => n.OpType == "Conv");
        Assert.That(graph.Node.Count(n => n.OpType == "QuantizeLinear"), Is.EqualTo(ranges.Count));
        Assert.That(graph.Node.Count(n => n.OpType == "DequantizeLinear"), Is.EqualTo(ranges.Count + 2 * convs), "activations, and each conv's weights and bias");
        foreach (var conv in graph.Node.Where(n => n.OpType == "Conv"))
        {
            Assert.That(conv.Input[1], Does.EndWith("_dq"));
            string weight = conv.Input[1][..^3];
            var w = graph.Initializer.Single(t => t.Name == weight + "_q");
            Assert.That(w.DataType, Is.EqualTo((int)(format == Int8Weights.U8 ? Onnx.TensorProto.Types.DataType.Uint8 : Onnx.TensorProto.Types.DataType.Int8)));
            var scale = graph.Initializer.Single(t => t.Name == weight + "_scale");
            Assert.That(scale.Dims.Single(), Is.EqualTo(w.Dims[0]), "one scale per output channel");
            // Each channel's scale is its own largest weight / steps (63 for S7's GEMM convolutions, 127 for depthwise ones
            // and the other formats), and every weight is within half a step of the folded float one.
            var want = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(floats[weight].RawData.Span).ToArray();
            var scales = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(scale.RawData.Span).ToArray();
            var ints = w.RawData.ToByteArray().Select(b => format == Int8Weights.U8 ? b - 128 : (sbyte)b).ToArray();
            int per = want.Length / scales.Length;
            for (int c = 0; c < scales.Length; c++)
            {
                bool depthwise = w.Dims[1] == 1 && w.Dims[0] > 1;
                float max = Enumerable.Range(c * per, per).Max(i => Math.Abs(want[i]));
                Assert.That(scales[c], Is.EqualTo(max / (depthwise ? 127 : steps)).Within(max * 1e-6 + 1e-12), $"{weight} channel {c}'s scale");
                for (int i = c * per; i < (c + 1) * per; i++) Assert.That(Math.Abs(ints[i] * scales[c] - want[i]), Is.LessThanOrEqualTo(scales[c] * 0.5001));
            }
        }
        Assert.That(graph.Initializer.Single(t => t.Name == "classifier.1.weight").DataType, Is.EqualTo((int)Onnx.TensorProto.Types.DataType.Float), "the classifier stays float32");
        Assert.That(ranges.Where(r => r.Tensor.StartsWith("clip")).All(r => r.Low == 0 && r.ZeroPoint == 0 && r.High <= 6), "ReLU6's outputs: [0, <= 6], 0 exact");

        using var f = OnnxModel.Load(fp32, threads: 2);
        using var q = OnnxModel.Load(int8, threads: 2);
        Assert.That(q.Card.Classes, Is.EqualTo(4), "the card travels with the int8 file");
        double worst = 0;
        int agree = 0, n = 0;
        foreach (var x in batches())
            using (x)
            {
                var data = x.data<float>().ToArray();
                int b = (int)x.shape[0];
                var (lf, lq) = (f.Logits(data, b, 64, 64), q.Logits(data, b, 64, 64));
                double range = lf.Max() - lf.Min();
                for (int i = 0; i < b; i++)
                {
                    var (rf, rq) = (lf.AsSpan(i * 4, 4).ToArray(), lq.AsSpan(i * 4, 4).ToArray());
                    worst = Math.Max(worst, rf.Zip(rq, (u, v) => Math.Abs(u - v)).Max() / range);
                    agree += Array.IndexOf(rf, rf.Max()) == Array.IndexOf(rq, rq.Max()) ? 1 : 0;
                    n++;
                }
            }
        TestContext.Out.WriteLine($"int8 vs float32: worst logit error {worst:P2} of the logits' range, top-1 agreement {agree}/{n}");
        Assert.That(worst, Is.LessThan(0.05), "int8 logits within 5% of the float logits' range");
        Assert.That(agree, Is.GreaterThanOrEqualTo(n * 9 / 10));
    }

    [Test]
    public void One_outlier_does_not_set_an_activations_range()
    {
        var hist = new double[100];
        hist[0] = 1e6 - 1; // a million values in [0, 1%) of [0, 100] ...
        hist[99] = 1;      // ... and one at 100
        var r = Int8.Clipped("t", 0, 100, hist, 99.999);
        Assert.That(r.High, Is.EqualTo(1).Within(1e-6), "the top bin holds one value in a million: clipped");
        Assert.That(r.Low, Is.EqualTo(0));
        Assert.That(r.Scale, Is.EqualTo(1 / 255f).Within(1e-9));
        var signed = Int8.Clipped("s", -3, 1, [5, 0, 0, 5], 99.999);
        Assert.That((signed.Low, signed.High, signed.ZeroPoint), Is.EqualTo((-3f, 1f, (byte)191)), "asymmetric: 0 is the zero point");
    }

    [Test]
    public void Bad_int8_requests_are_one_line_errors_naming_the_option()
    {
        var (card, net) = Network(32);
        using var _ = net;
        Assert.That(() => Calibration.FromFolder(Path.Combine(dir, "none"), card, 8), Throws.TypeOf<UserError>().With.Message.StartsWith("--calibrate:"));
        Directory.CreateDirectory(Path.Combine(dir, "empty"));
        Assert.That(() => Calibration.FromFolder(Path.Combine(dir, "empty"), card, 8), Throws.TypeOf<UserError>().With.Message.Contains("has no images"));
        Assert.That(() => Calibration.FromFolder(dir, card, 0), Throws.TypeOf<UserError>().With.Message.StartsWith("--calibration-images"));
        File.WriteAllText(Path.Combine(dir, "empty", "broken.jpg"), "not a jpeg");
        Assert.That(() => Calibration.FromFolder(Path.Combine(dir, "empty"), card, 8), Throws.TypeOf<UserError>().With.Message.Contains("is readable"));
        string path = Path.Combine(dir, "old.onnx");
        Func<IEnumerable<Tensor>> none = () => [];
        Assert.That(() => Int8.Write(path, card, net, new OnnxOptions(Opset: 11), none), Throws.TypeOf<UserError>().With.Message.StartsWith("--int8 needs --opset 13"));
        Assert.That(() => Int8.Write(path, card, net, new OnnxOptions(FoldBatchNorm: false), none), Throws.TypeOf<UserError>().With.Message.Contains("--keep-batchnorm"));
        Assert.That(File.Exists(path), Is.False, "nothing written");
    }
}
