using Keras.MobileNet.Export;

namespace Keras.MobileNet.Tests;

public class OnnxTests() : WithTempDir("km-onnx")
{

    /// <summary>
    /// A network with every BatchNorm statistic, scale and shift and every bias drawn at random, so that folding has
    /// work to do and ReLU6 clips a good share of the activations (a wrong clip bound shows).
    /// </summary>
    static (ModelCard Card, MobileNetV2 Net) Random(Preset arch, double width, int classes = 10)
    {
        var card = new ModelCard(arch, width, classes, Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(),
            Enumerable.Range(0, classes).Select(i => $"class {i}").ToArray(), 224, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], 0.2);
        manual_seed(7);
        var net = Factories.MobileNetV2(card.Spec());
        using (no_grad())
            foreach (var (name, t) in net.state_dict())
            {
                if (name.EndsWith("running_var")) t.uniform_(0.5, 2.0);
                else if (name.EndsWith("running_mean")) t.normal_(0, 0.2);
                else if (t.dim() == 1 && name.EndsWith("weight")) t.uniform_(1, 4); // BatchNorm gamma: ReLU6 clips often
                else if (name.EndsWith("bias")) t.normal_(0.5, 1);
            }
        net.eval();
        return (card, net);
    }

    static double RelativeError(float[] got, float[] want)
    {
        double scale = want.Max(Math.Abs), worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - want[i]));
        return worst / scale;
    }

    [TestCase(Preset.Paper, 1.0), TestCase(Preset.Paper, 0.5), TestCase(Preset.Paper, 0.35)]
    [TestCase(Preset.Notebook, 1.0), TestCase(Preset.Notebook, 0.5), TestCase(Preset.Notebook, 0.35)]
    public void Onnx_Runtime_gives_our_logits(Preset arch, double width)
    {
        var (card, net) = Random(arch, width);
        using var _ = net;
        foreach (bool fold in new[] { true, false })
        {
            string path = Path.Combine(dir, $"m-{fold}.onnx");
            OnnxExport.Write(path, card, net, new OnnxOptions(FoldBatchNorm: fold));
            using var onnx = OnnxModel.Load(path, threads: 2);
            Assert.That(onnx.Card, Is.EqualTo(card).Using<ModelCard>((a, b) => System.Text.Json.JsonSerializer.Serialize(a) == System.Text.Json.JsonSerializer.Serialize(b)));
            foreach (var (n, h, w) in new[] { (1, 224, 224), (3, 224, 224), (1, 160, 208), (3, 160, 208) })
            {
                manual_seed(n * h + w);
                using var x = randn(n, 3, h, w);
                float[] want;
                using (no_grad())
                using (var logits = net.forward(x)) want = logits.data<float>().ToArray();
                var got = onnx.Logits(x.data<float>().ToArray(), n, h, w);
                Assert.That(got, Has.Length.EqualTo(want.Length));
                Assert.That(RelativeError(got, want), Is.LessThan(1e-4), $"{arch} w{width} fold={fold} {n}x3x{h}x{w}");
            }
        }
    }

    [Test]
    public void A_fixed_batch_and_the_opset_are_written_and_too_old_an_opset_is_refused()
    {
        var (card, net) = Random(Preset.Paper, 0.35);
        using var _ = net;
        var model = OnnxExport.Build(card, net, new OnnxOptions(Opset: 13, Batch: 4));
        Assert.That(model.OpsetImport.Single().Version, Is.EqualTo(13));
        Assert.That(model.Graph.Input.Single().Type.TensorType.Shape.Dim[0].DimValue, Is.EqualTo(4));
        Assert.That(model.Graph.Output.Single().Type.TensorType.Shape.Dim[1].DimValue, Is.EqualTo(10));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "Clip"), Is.EqualTo(card.Spec().Blocks.Sum(b => b.Units.Count() - 1) + 2));
        Assert.That(model.Graph.Node.Count(n => n.OpType == "Add"), Is.EqualTo(card.Spec().Blocks.Count(b => b.Residual)));
        Assert.That(model.Graph.Node.Any(n => n.OpType == "BatchNormalization"), Is.False, "folded by default");
        Assert.That(model.MetadataProps.Select(p => p.Key), Does.Contain("class_names").And.Contain("mean").And.Contain("std").And.Contain("image_size"));
        Assert.That(() => OnnxExport.Write(Path.Combine(dir, "old.onnx"), card, net, new OnnxOptions(Opset: 9)),
            Throws.InstanceOf<Backend.UserError>().With.Message.Contains("--opset"));
        Assert.That(File.Exists(Path.Combine(dir, "old.onnx")), Is.False);
    }
}
