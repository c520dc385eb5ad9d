using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

/// <summary>The built module against the spec, against torchvision, and against PyTorch's own numbers.</summary>
public class ModuleTests
{
    static readonly double[] Widths = [0.25, 0.35, 0.5, 0.75, 1.0, 1.4];

    [Test]
    public void State_dict_keys_and_order_are_torchvision_s([Values(0.5, 1.0)] double width)
    {
        using var ours = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, width, 10));
        using var tv = torchvision.models.mobilenet_v2(num_classes: 10, width_mult: width);
        var ourKeys = StateDicts.InPyTorchOrder(ours).Select(e => e.Key).ToList();
        Assert.That(ourKeys, Has.Count.EqualTo(314));
        Assert.That(ourKeys, Is.EquivalentTo(tv.state_dict().Keys));
        // PyTorch's order, derived independently from the spec's layer list: conv weight, BN weight, bias,
        // running stats, counter, ..., classifier last.
        var expected = new List<string>();
        foreach (var l in Counts.Layers(ours.Spec))
        {
            if (l.Kind.Contains("Conv2d")) expected.Add(l.Name + ".weight");
            else if (l.Kind == "BatchNorm2d")
                expected.AddRange(new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }.Select(s => $"{l.Name}.{s}"));
            else if (l.Kind == "Linear") expected.AddRange([l.Name + ".weight", l.Name + ".bias"]);
        }
        Assert.That(ourKeys, Is.EqualTo(expected));
        Assert.That(ourKeys[0], Is.EqualTo("features.0.0.weight"));
        Assert.That(ourKeys[^1], Is.EqualTo("classifier.1.bias"));
        var tvState = tv.state_dict();
        foreach (var (k, t) in StateDicts.InPyTorchOrder(ours))
            Assert.That(t.shape, Is.EqualTo(tvState[k].shape), k);
    }

    public static IEnumerable<TestCaseData> EveryNetwork() =>
        from preset in new[] { Preset.Paper, Preset.Notebook }
        from w in Widths
        select new TestCaseData(preset, w).SetName($"{preset}_w{w}");

    [TestCaseSource(nameof(EveryNetwork))]
    public void Analytic_counts_equal_the_live_module_layer_by_layer(Preset preset, double width)
    {
        foreach (int classes in new[] { 10, 1000 })
        {
            var spec = MobileNetV2Spec.Build(preset, width, classes);
            using var model = Factories.MobileNetV2(spec);
            var live = model.named_modules()
                .Where(m => !m.module.named_children().Any())
                .ToDictionary(m => m.name, m => (
                    trainable: m.module.parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
                    buffers: m.module.named_buffers().Where(b => b.name != "num_batches_tracked").Sum(b => b.buffer.numel())));
            var layers = Counts.Layers(spec).Where(l => l.Trainable + l.NonTrainable > 0).ToList();
            Assert.That(layers.Select(l => l.Name), Is.EquivalentTo(live.Where(kv => kv.Value.trainable > 0).Select(kv => kv.Key)));
            foreach (var l in layers)
                Assert.That((live[l.Name].trainable, live[l.Name].buffers), Is.EqualTo((l.Trainable, l.NonTrainable)), l.Name);
            var counts = Counts.Of(spec);
            Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(counts.Trainable));
        }
    }

    /// <summary>
    /// The layer table (what `summary` prints) read against the live network: forward hooks record each leaf module's
    /// name, what it is (from the module: its type, groups, kernel and stride) and its output shape, in the order the
    /// forward pass runs them, plus an "Add" wherever a block's output keeps its input's shape (the residual). The pool
    /// is functional in torchvision's forward, so it has no module: it sits between features and the classifier.
    /// </summary>
    [TestCase(Preset.Paper, 1.0), TestCase(Preset.Notebook, 0.5), TestCase(Preset.Paper, 0.35)]
    public void The_layer_table_is_the_live_network_in_forward_order_with_each_layer_s_output_shape(Preset preset, double width)
    {
        var spec = MobileNetV2Spec.Build(preset, width, 7);
        using var model = Factories.MobileNetV2(spec);
        model.eval();
        var live = new List<(string Name, string Kind, long C, long H, long W)>();
        static (long, long, long) Chw(Tensor y) => y.dim() == 4 ? (y.shape[1], y.shape[2], y.shape[3]) : (y.shape[1], 1, 1);
        var hooks = new List<Action>();
        foreach (var (name, m) in model.named_modules())
        {
            if (m is InvertedResidual block)
            {
                var remove = block.register_forward_hook((_, x, y) =>
                {
                    if (x.shape.SequenceEqual(y.shape)) { var (c, h, w) = Chw(y); live.Add((name, "Add", c, h, w)); }
                    return y;
                });
                hooks.Add(remove.remove);
            }
            else if (m is nn.Module<Tensor, Tensor> leaf && !m.named_children().Any())
            {
                var remove = leaf.register_forward_hook((_, x, y) =>
                {
                    var (c, h, w) = Chw(y);
                    string kind = m switch
                    {
                        TorchSharp.Modules.Convolution conv => $"{(conv.groups > 1 && conv.groups == x.shape[1] ? "DepthwiseConv2d" : "Conv2d")} " +
                            $"{conv.weight!.shape[2]}x{conv.weight.shape[3]}/{(x.shape[2] + y.shape[2] - 1) / y.shape[2]}",
                        TorchSharp.Modules.Dropout => $"Dropout({spec.Dropout})",
                        _ => m.GetName(),
                    };
                    live.Add((name, kind, c, h, w));
                    return y;
                });
                hooks.Add(remove.remove);
            }
        }
        using (no_grad()) model.forward(randn(1, 3, 61, 45)).Dispose();
        foreach (var remove in hooks) remove();
        int classifier = live.FindIndex(l => l.Name == "classifier.0");
        live.Insert(classifier, ("pool", "AdaptiveAvgPool2d", spec.Features, 1, 1));

        var table = Counts.Layers(spec, 61, 45).Select(l => (l.Name, l.Kind, (long)l.Channels, (long)l.Height, (long)l.Width));
        Assert.That(table, Is.EqualTo(live));
        Assert.That(live.Count(l => l.Kind == "Add"), Is.EqualTo(spec.Blocks.Count(b => b.Stride == 1 && b.In == b.Out)).And.GreaterThan(0));
        Assert.That(live.Count(l => l.Kind.StartsWith("DepthwiseConv2d")), Is.EqualTo(spec.Blocks.Count));
    }

    [TestCase(Preset.Paper), TestCase(Preset.Notebook)]
    public void Initialisation_is_torchvision_s_kaiming_fan_out_unit_batchnorm_and_a_small_normal_classifier(Preset preset)
    {
        manual_seed(5);
        using var model = Factories.MobileNetV2(MobileNetV2Spec.Build(preset, 1.0, 1000));
        var p = model.named_parameters().ToDictionary(e => e.name, e => e.parameter);
        // kaiming_normal_(mode="fan_out", relu): std = sqrt(2 / (out * k * k)); the last 1x1 conv has 1280 * 320 weights.
        var last = p["features.18.0.weight"];
        double want = Math.Sqrt(2.0 / last.shape[0]);
        Assert.That(last.std().item<float>(), Is.EqualTo(want).Within(2).Percent);
        Assert.That(last.mean().item<float>(), Is.EqualTo(0).Within(0.02 * want));
        var dw = p["features.17.conv.1.0.weight"]; // depthwise 3x3: PyTorch's fan_out is out * 9, groups not divided out
        Assert.That(dw.std().item<float>(), Is.EqualTo(Math.Sqrt(2.0 / (dw.shape[0] * 9))).Within(5).Percent);
        foreach (var (name, t) in p.Where(e => e.Key.StartsWith("features.") && e.Value.dim() == 1))
        {
            bool isBnWeight = name.EndsWith(".weight");
            Assert.That(t.eq(isBnWeight ? 1 : 0).all().item<bool>(), name + (isBnWeight ? ": BatchNorm gamma starts at 1" : ": biases start at 0"));
        }
        var fc = p["classifier.1.weight"];
        Assert.That(fc.std().item<float>(), Is.EqualTo(0.01).Within(2).Percent, "normal(0, 0.01)");
        Assert.That(p["classifier.1.bias"].eq(0).all().item<bool>());
        // The truncated normal itself: bounds hold where they bite (std 1, cut at [-0.5, 1]) and the draws fill them.
        using var cut = empty(20000);
        Initialization.TruncNormal(cut, 0, 1, -0.5, 1);
        Assert.That((cut.min().item<float>(), cut.max().item<float>()), Is.EqualTo((-0.5f, 1f)).Within(0.01f));
        // The mean of a standard normal truncated to [-0.5, 1]: (phi(-0.5) - phi(1)) / (Phi(1) - Phi(-0.5)) = 0.2066.
        Assert.That(cut.mean().item<float>(), Is.EqualTo(0.2066).Within(0.01));
    }

    [Test]
    public void A_residual_block_adds_its_input_and_a_strided_one_does_not()
    {
        manual_seed(2);
        var spec = MobileNetV2Spec.Build(Preset.Paper, 0.5, 10);
        int b = spec.Blocks.ToList().FindIndex(x => x.Residual);
        using var block = Factories.InvertedResidualBlock(spec.Blocks[b]);
        using var plain = Factories.InvertedResidualBlock(spec.Blocks[b] with { Residual = false });
        plain.load_state_dict(block.state_dict());
        block.eval(); plain.eval();
        using var _ = no_grad();
        var x = randn(2, spec.Blocks[b].In, 8, 8);
        Assert.That(block.Skip && !plain.Skip);
        Assert.That((block.forward(x) - (x + plain.forward(x))).abs().max().item<float>(), Is.LessThan(1e-6f));
    }

    [TestCaseSource(nameof(EveryNetwork))]
    public void Forward_and_backward_work_at_224_and_non_square(Preset preset, double width)
    {
        var spec = MobileNetV2Spec.Build(preset, width, 7);
        using var model = Factories.MobileNetV2(spec);
        model.train();
        foreach (var (h, w) in new[] { (224, 224), (96, 64) })
        {
            using var scope = NewDisposeScope();
            var x = randn(2, 3, h, w);
            var y = model.forward(x);
            Assert.That(y.shape, Is.EqualTo(new long[] { 2, 7 }));
            y.sum().backward();
            Assert.That(y.isnan().any().item<bool>(), Is.False);
            var grads = model.parameters().Select(p => p.grad).ToList();
            Assert.That(grads.All(g => g is not null && !g.isnan().any().item<bool>()), "every parameter gets a finite gradient");
            model.zero_grad();
        }
        // The analytic spatial rule agrees with the module on an odd size.
        using (no_grad())
        {
            model.eval();
            var layers = Counts.Layers(spec, 61, 45);
            using var feats = ((nn.Module<Tensor, Tensor>)model.named_children().First().module).forward(randn(1, 3, 61, 45));
            var last = layers.Last(l => l.Name.EndsWith(".0") && l.Name.StartsWith("features."));
            Assert.That(feats.shape, Is.EqualTo(new long[] { 1, last.Channels, last.Height, last.Width }));
        }
    }

    [Test]
    public void Torchvision_weights_reproduce_the_pytorch_training_trace()
    {
        // In float64: the float32 trace is chaotic (fixtures/parity/make.py says why), the float64 one pins the recipe.
        var spec = MobileNetV2Spec.Build(Preset.Paper, 0.5, 10, dropout: 0);
        using var model = Factories.MobileNetV2(spec);
        model.load_safetensors(Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors"));
        model.to(float64);
        var trace = Safetensors.LoadStateDict(Setup.Fixture("parity_w0.5_c10_f64.safetensors"));

        var result = Parity.Run(model, trace["train_x"].to(float64), trace["train_y"], trace["eval_x"].to(float64));

        var expectedLosses = trace["train_losses"].data<double>().ToArray();
        Assert.That(expectedLosses, Has.Length.EqualTo(3));
        Assert.That(result.Losses, Is.EqualTo(expectedLosses).Within(1e-7).Percent);
        AssertClose(result.LogitsAfter, trace["logits_after"], 1e-6);
        AssertClose(result.Bn0RunningMean, trace["bn0_running_mean_after"], 1e-9);
        // logits_before is tiny (~2e-8): compare relative to its own scale.
        var before = trace["logits_before"];
        double scale = before.abs().max().item<double>();
        Assert.That((result.LogitsBefore - before).abs().max().item<double>(), Is.LessThan(1e-6 * scale));
    }

    static void AssertClose(Tensor actual, Tensor expected, double atol)
    {
        Assert.That(actual.shape, Is.EqualTo(expected.shape));
        double diff = (actual - expected).abs().max().to(float64).item<double>();
        Assert.That(diff, Is.LessThan(atol), $"max abs difference {diff}");
    }
}
