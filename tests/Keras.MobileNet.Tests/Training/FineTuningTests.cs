namespace Keras.MobileNet.Tests;

public class FineTuningTests
{
    sealed class Snapshots : Callback
    {
        public readonly List<Dictionary<string, Tensor>> After = [];
        public override void OnEpochEnd(int epoch, Logs logs) =>
            After.Add(Model.Network.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone()));
    }

    static int Child(string key) => key.StartsWith("features.") ? int.Parse(key.Split('.')[1]) : -1;

    static (Dictionary<string, Tensor> Start, List<Dictionary<string, Tensor>> After) Run(bool batchNormTrains)
    {
        manual_seed(0);
        var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2)), CPU, 2);
        // Weight decay on: a frozen parameter that the optimizer still touched would change.
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-2, 0.05), Losses.CrossEntropy()));
        var start = model.Network.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone());
        var snaps = new Snapshots();
        var data = new TensorData(randn(8, 3, 32, 32), tensor(new long[] { 0, 1, 0, 1, 1, 0, 1, 0 }), 4);
        model.Fit(data, 4, null, [new FineTuning(unfreezeEpoch: 2, unfreezeFrom: 10, batchNormTrains), snaps]);
        model.Dispose();
        return (start, snaps.After);
    }

    static bool Same(Tensor a, Tensor b) => a.equal(b).all().item<bool>();

    [TestCase(false), TestCase(true)]
    public void Phase_one_trains_only_the_head_and_phase_two_only_the_unfrozen_blocks(bool batchNormTrains)
    {
        var (start, after) = Run(batchNormTrains);
        foreach (int epoch in new[] { 0, 1 })
        {
            foreach (var (k, t) in after[epoch].Where(e => e.Key.StartsWith("features.")))
                Assert.That(Same(t, start[k]), $"phase 1, epoch {epoch + 1}: {k} is bit-identical");
            Assert.That(Same(after[epoch]["classifier.1.weight"], start["classifier.1.weight"]), Is.False, "the head trains");
        }
        foreach (int epoch in new[] { 2, 3 })
            foreach (var (k, t) in after[epoch].Where(e => e.Key.StartsWith("features.")))
            {
                bool buffer = k.Contains("running_") || k.EndsWith("num_batches_tracked");
                bool shouldChange = Child(k) >= 10 && (!buffer || batchNormTrains);
                Assert.That(Same(t, start[k]), Is.EqualTo(!shouldChange), $"phase 2, epoch {epoch + 1}: {k}");
            }
    }

    [TestCase(0), TestCase(12), TestCase(19)]
    public void The_summary_counts_under_a_freeze_equal_the_parameters_that_require_gradients(int unfreezeFrom)
    {
        var spec = MobileNetV2Spec.Build(Preset.Paper, 1.0, 10);
        using var net = Factories.MobileNetV2(spec);
        // Phase 2 from unfreezeFrom; with 19 (every child of features) it is phase 1's freeze.
        new FineTuning(unfreezeEpoch: 0, unfreezeFrom, batchNormTrains: false).Apply(net, epoch: 0);
        long trains = net.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        var counts = Counts.UnderFreeze(spec, unfreezeFrom);
        Assert.That(counts.Trainable, Is.EqualTo(trains));
        Assert.That(counts.Total, Is.EqualTo(Counts.Of(spec, 224, 224).Total));
        Assert.That(() => Counts.UnderFreeze(spec, -1), Throws.ArgumentException.With.Message.Contains("--unfreeze-from must be in [0, 19]"));
        Assert.That(() => Counts.UnderFreeze(spec, 20), Throws.ArgumentException.With.Message.Contains("not 20"));
    }

    [Test]
    public void The_phase_is_a_function_of_the_epoch_and_each_phase_has_its_own_cosine()
    {
        Assert.That(Enumerable.Range(0, 5).Select(e => FineTuning.FirstTrainable(e, 2, 7)), Is.EqualTo(new[] { int.MaxValue, int.MaxValue, 7, 7, 7 }));
        var lr = Schedules.TwoPhaseCosine(1e-3, 1e-4, 0, unfreezeEpoch: 2, epochs: 6);
        Assert.That(lr(0), Is.EqualTo(1e-3));
        Assert.That(lr(1), Is.EqualTo(5e-4).Within(1e-12));
        Assert.That(lr(2), Is.EqualTo(1e-4), "phase 2 starts at the fine-tuning rate");
        Assert.That(lr(4), Is.EqualTo(5e-5).Within(1e-12));
    }

    /// <summary>Records how many children of features ran in ONNX Runtime in each epoch.</summary>
    sealed class PrefixProbe : Callback
    {
        public readonly List<int> PerEpoch = [];
        public override void OnEpochEnd(int epoch, Logs logs) => PerEpoch.Add(Model.FrozenChildrenInOnnxRuntime);
    }

    static (List<double> Losses, Dictionary<string, Tensor> After, List<int> InOrt) FineTune(InferenceEngine engine)
    {
        using var model = Applications.MobileNetV2(width: 0.35, classes: 4, seed: 5);
        TinyModel.RandomStatistics(model.Network, seed: 6);
        model.InferenceEngine = engine;
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0.01), Losses.CrossEntropy(0.1)));
        var data = new TensorData(randn(16, 3, 40, 48), tensor(new long[] { 0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0 }), 8);
        var probe = new PrefixProbe();
        // Epoch 1: phase 1 (all of features frozen); epoch 2: phase 2 from block 14 (features.0-13 frozen).
        var history = model.Fit(data, 2, callbacks: [new FineTuning(unfreezeEpoch: 1, unfreezeFrom: 14, batchNormTrains: false), probe]);
        return ([.. history.Series("loss")], model.Network.state_dict().ToDictionary(e => e.Key, e => e.Value.detach().clone()), probe.PerEpoch);
    }

    [Test]
    public void The_frozen_part_in_Onnx_Runtime_trains_what_libtorch_trains()
    {
        var torch = FineTune(InferenceEngine.Torch);
        var ort = FineTune(InferenceEngine.Auto);
        Assert.That((torch.InOrt, ort.InOrt), Is.EqualTo((new List<int> { 0, 0 }, new List<int> { 19, 14 })),
            "on a CPU the frozen children run in ONNX Runtime: all 19 in phase 1, features.0-13 in phase 2");
        Assert.That(ort.Losses, Is.EqualTo(torch.Losses).Within(1e-4).Percent);
        foreach (var key in new[] { "classifier.1.weight", "classifier.1.bias", "features.16.conv.2.weight", "features.18.0.weight" })
            Assert.That((ort.After[key] - torch.After[key]).abs().max().item<float>(), Is.LessThan(1e-4f), key);
        Assert.That(Same(ort.After["features.13.conv.2.weight"], torch.After["features.13.conv.2.weight"]), "a frozen child is untouched");
        Assert.That(Same(torch.After["features.16.conv.2.weight"], FineTune(InferenceEngine.Torch).After["features.16.conv.2.weight"]),
            "deterministic: the comparison is not against noise");
    }
}
