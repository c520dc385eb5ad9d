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
}
