namespace Keras.MobileNet.Tests;

/// <summary>Pure arithmetic of the architecture: no module, no tensor.</summary>
public class SpecTests
{
    [TestCase(32.0, 32)]
    [TestCase(24.0, 24)]
    [TestCase(8.0, 8)]
    [TestCase(1.0, 8)]      // never below the divisor
    [TestCase(12.0, 16)]    // 12 + 4 = 16 rounds up at the half
    [TestCase(11.9, 16)]    // int(11.9 + 4) // 8 * 8 = 8 is below 0.9 * 11.9, so the 10% guard adds 8
    [TestCase(20.0, 24)]    // exactly half way rounds up
    [TestCase(17.0, 16)]    // 16 is within 10% of 17
    [TestCase(19.9, 24)]    // 16 is not within 10% of 19.9
    public void MakeDivisible_rounds_to_multiples_of_eight(double value, int expected) =>
        Assert.That(WidthRules.MakeDivisible(value), Is.EqualTo(expected));

    [Test]
    public void MakeDivisible_ten_percent_guard()
    {
        // 0.35 * 320 = 112 exactly; 0.35 * 24 = 8.4 -> 8; 0.35*16=5.6 -> 8 (minimum); 0.75*160 = 120
        Assert.That(WidthRules.MakeDivisible(0.35 * 24), Is.EqualTo(8));
        Assert.That(WidthRules.MakeDivisible(0.35 * 16), Is.EqualTo(8));
        Assert.That(WidthRules.MakeDivisible(0.25 * 96), Is.EqualTo(24));
        // 0.25 * 160 = 40; 0.25 * 320 = 80; 1.4 * 24 = 33.6 -> 32; 1.4 * 160 = 224
        Assert.That(WidthRules.MakeDivisible(1.4 * 24), Is.EqualTo(32));
        // a value whose nearest multiple is more than 10% below: 91 -> 88 (3% below) kept; 9.5 -> 8 (16% below) -> 16
        Assert.That(WidthRules.MakeDivisible(91), Is.EqualTo(88));
        Assert.That(WidthRules.MakeDivisible(9.5, 8, 1), Is.EqualTo(16));
        Assert.That(WidthRules.MakeDivisible(100, 10), Is.EqualTo(100));
        Assert.That(() => WidthRules.MakeDivisible(10, 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Width_rules_differ_between_presets()
    {
        Assert.That(WidthRules.Channels(Preset.Paper, 32, 0.75), Is.EqualTo(24));
        Assert.That(WidthRules.Channels(Preset.Notebook, 16, 0.75), Is.EqualTo(12));     // int(12.0), not 16
        Assert.That(WidthRules.Channels(Preset.Paper, 16, 0.75), Is.EqualTo(16));        // 12 -> 16
        Assert.That(WidthRules.LastChannels(Preset.Paper, 0.5), Is.EqualTo(1280));       // not scaled below 1
        Assert.That(WidthRules.LastChannels(Preset.Paper, 1.4), Is.EqualTo(1792));
        Assert.That(WidthRules.LastChannels(Preset.Notebook, 0.75), Is.EqualTo(960));
        Assert.That(WidthRules.LastChannels(Preset.Notebook, 0.25), Is.EqualTo(320));
        Assert.That(WidthRules.Hidden(Preset.Paper, 24, 6), Is.EqualTo(144));
    }

    [Test]
    public void Table_expands_into_seventeen_blocks_with_paper_strides()
    {
        var spec = MobileNetV2Spec.Build(Preset.Paper, 1.0, 1000);
        Assert.That(spec.Blocks, Has.Count.EqualTo(17));
        Assert.That(spec.Stem, Is.EqualTo(new ConvUnit(3, 32, 3, 2, 1, false, Activation.ReLU6)));
        Assert.That(spec.Blocks.Select(b => b.Out),
            Is.EqualTo(new[] { 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320 }));
        Assert.That(spec.Blocks.Select(b => b.Stride),
            Is.EqualTo(new[] { 1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1 }));
        Assert.That(spec.Blocks.Count(b => b.Residual), Is.EqualTo(10));
        Assert.That(spec.Blocks[0].Expand, Is.Null, "t = 1 has no expand conv in torchvision");
        Assert.That(spec.Blocks[1].Hidden, Is.EqualTo(96));
        Assert.That(spec.Blocks[1].Depthwise.Groups, Is.EqualTo(96));
        Assert.That(spec.Blocks.All(b => b.Project.Act == Activation.None), "linear bottleneck");
        Assert.That(spec.Last.Out, Is.EqualTo(1280));
        // channels chain: each block starts where the last ended
        for (int i = 1; i < spec.Blocks.Count; i++) Assert.That(spec.Blocks[i].In, Is.EqualTo(spec.Blocks[i - 1].Out));
    }

    [Test]
    public void Notebook_preset_keeps_expand_at_t1_with_bias_and_relu()
    {
        var spec = MobileNetV2Spec.Build(Preset.Notebook, 0.5, 10);
        Assert.That(spec.Blocks[0].Expand, Is.Not.Null);
        Assert.That(spec.Blocks[0].Hidden, Is.EqualTo(16));
        Assert.That(spec.Stem, Is.EqualTo(new ConvUnit(3, 16, 3, 2, 1, true, Activation.ReLU)));
        Assert.That(spec.Last.Out, Is.EqualTo(640));
        Assert.That(spec.Dropout, Is.EqualTo(0));
    }

    [TestCase(0.0)]
    [TestCase(-1.0)]
    [TestCase(double.NaN)]
    public void Invalid_width_is_a_clear_error(double width) =>
        Assert.That(() => MobileNetV2Spec.Build(Preset.Paper, width, 10),
            Throws.ArgumentException.With.Message.Contains("width"));

    [Test]
    public void Invalid_classes_and_image_size_are_clear_errors()
    {
        Assert.That(() => MobileNetV2Spec.Build(Preset.Paper, 1, 1), Throws.ArgumentException.With.Message.Contains("classes"));
        var spec = MobileNetV2Spec.Build();
        Assert.That(() => Counts.Of(spec, 31, 224), Throws.ArgumentException.With.Message.Contains("at least 32"));
        Assert.That(() => Counts.Of(spec, 224, 31), Throws.ArgumentException.With.Message.Contains("at least 32"));
        Assert.That(Counts.Of(spec, 32, 32).Macs, Is.GreaterThan(0), "32 px, the smallest size, is allowed in each dimension");
        Assert.That(() => MobileNetV2Spec.Build(Preset.Notebook, 0.01, 10), Throws.ArgumentException.With.Message.Contains("width"));
        Assert.That(() => MobileNetV2Spec.Build(Preset.Paper, double.PositiveInfinity, 10), Throws.ArgumentException.With.Message.Contains("width"));
        Assert.That(() => MobileNetV2Spec.Build(Preset.Paper, 16.5, 10), Throws.ArgumentException.With.Message.Contains("at most 16"));
        Assert.That(MobileNetV2Spec.Build(Preset.Paper, 16, 2).Classes, Is.EqualTo(2), "width 16 and two classes are the limits, allowed");
    }

    [Test]
    public void A_width_that_empties_a_stage_is_a_clear_error_and_blocks_list_their_units_in_forward_order()
    {
        // Notebook at 0.05: the stem keeps int(32 * 0.05) = 1 channel, the first stage int(16 * 0.05) = 0.
        Assert.That(() => MobileNetV2Spec.Build(Preset.Notebook, 0.05, 10), Throws.ArgumentException.With.Message.Contains("stage of 16 channels empty"));
        var paper = MobileNetV2Spec.Build(Preset.Paper, 1.0, 10).Blocks;
        Assert.That(paper[0].Units, Is.EqualTo(new[] { paper[0].Depthwise, paper[0].Project }), "t = 1: no expand in the paper's network");
        Assert.That(paper[1].Units, Is.EqualTo(new[] { paper[1].Expand, paper[1].Depthwise, paper[1].Project }));
        var notebook = MobileNetV2Spec.Build(Preset.Notebook, 1.0, 10).Blocks;
        Assert.That(notebook[0].Units, Is.EqualTo(new[] { notebook[0].Expand, notebook[0].Depthwise, notebook[0].Project }));
    }

    [Test]
    public void The_smallest_widths_keep_a_channel_or_say_which_layer_they_empty()
    {
        Assert.That(WidthRules.MakeDivisible(1, 8, minValue: 16), Is.EqualTo(16), "a minimum above the divisor");
        Assert.That(() => WidthRules.MakeDivisible(16, 0), Throws.TypeOf<ArgumentOutOfRangeException>());
        // Notebook at 0.03: int(32 * 0.03) = 0 stem channels; at 0.0625 the first stage has exactly one channel, allowed.
        Assert.That(() => MobileNetV2Spec.Build(Preset.Notebook, 0.03, 10), Throws.ArgumentException.With.Message.Contains("stem with no channels"));
        var one = MobileNetV2Spec.Build(Preset.Notebook, 0.0625, 10);
        Assert.That(one.Blocks[0].Out, Is.EqualTo(1));
    }

    [Test]
    public void Depthwise_means_one_group_per_input_channel_and_more_than_one_channel()
    {
        Assert.That(new ConvUnit(8, 8, 3, 1, 8, false, Activation.ReLU6).Depthwise, Is.True);
        Assert.That(new ConvUnit(8, 16, 3, 1, 4, false, Activation.ReLU6).Depthwise, Is.False, "grouped, not depthwise");
        Assert.That(new ConvUnit(1, 8, 3, 1, 1, false, Activation.ReLU6).Depthwise, Is.False, "a plain conv over one channel");
        Assert.That(new ConvUnit(3, 32, 3, 2, 1, false, Activation.ReLU6).Depthwise, Is.False);
    }

    public static IEnumerable<TestCaseData> Anchors()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(
            Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", "anchors.json")));
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (!p.Name.StartsWith('w')) continue;
            var parts = p.Name[1..].Split("_c");
            yield return new TestCaseData(double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture),
                int.Parse(parts[1]), p.Value.GetProperty("params").GetInt64(), p.Value.GetProperty("buffers").GetInt64(),
                p.Value.GetProperty("macs_224").GetInt64()).SetName($"Anchor_{p.Name}");
        }
    }

    [TestCaseSource(nameof(Anchors))]
    public void Analytic_counts_match_pytorch_anchors(double width, int classes, long parameters, long buffers, long macs)
    {
        var spec = MobileNetV2Spec.Build(Preset.Paper, width, classes);
        var counts = Counts.Of(spec);
        Assert.That(counts.Trainable, Is.EqualTo(parameters));
        // PyTorch's buffers also hold one num_batches_tracked per BatchNorm, which Keras does not count.
        int norms = Counts.Layers(spec).Count(l => l.Kind == "BatchNorm2d");
        Assert.That(counts.NonTrainable + norms, Is.EqualTo(buffers));
        Assert.That(counts.Macs, Is.EqualTo(macs));
    }

    [TestCase(Preset.Paper, 1.0, 2236682), TestCase(Preset.Paper, 0.75, 1368234), TestCase(Preset.Paper, 0.5, 700490), TestCase(Preset.Paper, 0.25, 250922)]
    [TestCase(Preset.Notebook, 1.0, 2254858), TestCase(Preset.Notebook, 0.75, 1292578), TestCase(Preset.Notebook, 0.5, 596010), TestCase(Preset.Notebook, 0.25, 165154)]
    public void Trainable_params_10_classes(Preset preset, double width, long expected) =>
        Assert.That(Counts.Of(MobileNetV2Spec.Build(preset, width, 10)).Trainable, Is.EqualTo(expected));

    [Test]
    public void Keras_figures_for_width_one_1000_classes()
    {
        var c = Counts.Of(MobileNetV2Spec.Build(Preset.Paper, 1.0, 1000));
        Assert.That((c.Total, c.Trainable, c.NonTrainable, c.Macs), Is.EqualTo((3538984L, 3504872L, 34112L, 300774272L)));
    }

    [Test]
    public void Macs_scale_with_input_size_and_shapes_follow_strides()
    {
        var spec = MobileNetV2Spec.Build(Preset.Paper, 1.0, 10);
        var at224 = Counts.Layers(spec, 224, 224);
        Assert.That(at224.Last(l => l.Name == "features.18.0").Height, Is.EqualTo(7));
        var odd = Counts.Layers(spec, 225, 161);
        var last = odd.Last(l => l.Name == "features.18.0");
        Assert.That((last.Height, last.Width), Is.EqualTo((8, 6)));  // ceil(225/32), ceil(161/32)
        Assert.That(Counts.Of(spec, 448, 448).Macs, Is.GreaterThan(3.9 * Counts.Of(spec).Macs));
    }
}
