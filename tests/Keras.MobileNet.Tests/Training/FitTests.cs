using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

public class FitTests
{
    sealed class Recorder : Callback
    {
        public readonly List<string> Events = [];
        public override void OnTrainBegin(Logs logs) => Events.Add("train_begin");
        public override void OnTrainEnd(Logs logs) => Events.Add("train_end");
        public override void OnEpochBegin(int epoch, Logs logs) => Events.Add($"epoch_begin {epoch}");
        public override void OnEpochEnd(int epoch, Logs logs) => Events.Add($"epoch_end {epoch} {(logs.Get("val_loss") is null ? "" : "val")}");
        public override void OnBatchBegin(int batch, Logs logs) => Events.Add($"batch_begin {batch}");
        public override void OnBatchEnd(int batch, Logs logs) => Events.Add($"batch_end {batch}");
    }

    [Test]
    public void Parity_recipe_through_Fit_reproduces_the_pytorch_losses()
    {
        var spec = MobileNetV2Spec.Build(Preset.Paper, 0.5, 10, dropout: 0);
        var net = Factories.MobileNetV2(spec);
        net.load_safetensors(Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors"));
        net.to(float64); // the trace is float64 (fixtures/parity/make.py)
        var trace = Safetensors.LoadStateDict(Setup.Fixture("parity_w0.5_c10_f64.safetensors"));
        using var model = new KerasModel(net, CPU, 10);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 1e-2), Losses.CrossEntropy(0.1)));
        var x = trace["train_x"].to(float64);
        var history = model.Fit(new TensorData(x, trace["train_y"], (int)x.shape[0]), epochs: 3);
        var expected = trace["train_losses"].data<double>().ToArray();
        Assert.That(history.Series("loss"), Is.EqualTo(expected).Within(1e-7).Percent);
        using var after = model.Predict(trace["eval_x"].to(float64));
        Assert.That((after - trace["logits_after"]).abs().max().item<double>(), Is.LessThan(1e-6));
    }

    [Test]
    public void Hooks_fire_in_keras_order_and_history_folds_epoch_logs()
    {
        using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 3)), CPU, 3);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
        var data = new TensorData(randn(6, 3, 32, 32), tensor(new long[] { 0, 1, 2, 0, 1, 2 }), 4);
        var rec = new Recorder();
        var history = model.Fit(data, 2, validation: data, callbacks: [rec]);
        Assert.That(rec.Events, Is.EqualTo(new[]
        {
            "train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 0 val",
            "epoch_begin 1", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 1 val", "train_end",
        }));
        Assert.That(history.Epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(history.Series("val_accuracy").All(v => v is >= 0 and <= 1));
        Assert.That(history.Series("val_top5").All(v => v == 1), "top-5 of 3 classes always hits");
    }

    [Test]
    public void Evaluate_folds_mean_of_batch_means_accuracy_and_confusion()
    {
        // A network that returns its input as logits makes every number checkable by hand.
        var identity = new Identity();
        using var model = new KerasModel(identity, CPU, 3);
        var logits = tensor(new float[,] { { 3, 1, 0 }, { 0, 2, 1 }, { 1, 0, 5 }, { 4, 0, 1 }, { 0, 0, 1 } });
        var labels = tensor(new long[] { 0, 1, 1, 0, 2 });
        var e = model.Evaluate(new TensorData(logits, labels, 2));
        Assert.That(e.Accuracy, Is.EqualTo(4.0 / 5));
        Assert.That(e.Samples, Is.EqualTo(5));
        double Batch(int s, int n) => nn.functional.cross_entropy(logits.narrow(0, s, n), labels.narrow(0, s, n)).item<float>();
        Assert.That(e.Loss, Is.EqualTo((Batch(0, 2) + Batch(2, 2) + Batch(4, 1)) / 3).Within(1e-6), "mean of batch means");
        Assert.That(e.Confusion[1, 2], Is.EqualTo(1));
        Assert.That(e.Confusion[0, 0], Is.EqualTo(2));
        Assert.That(e.PerClassAccuracy(), Is.EqualTo(new[] { 1.0, 0.5, 1.0 }));
        Assert.That(e.ConfusionRows(), Is.EqualTo(new[] { new long[] { 2, 0, 0 }, new long[] { 0, 1, 1 }, new long[] { 0, 0, 1 } }));
        Assert.That(e.TopK, Is.EqualTo(1.0), "top-5 of three classes is every class");
        // Four classes, the last two never seen: its accuracy is undefined, not 0; top-2 counts the runner-up.
        using var four = new KerasModel(new Identity(), CPU, 4);
        four.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(), TopK: 2));
        var e4 = four.Evaluate(new TensorData(tensor(new float[,] { { 3, 2, 0, 0 }, { 3, 2, 0, 0 }, { 0, 0, 5, 1 } }), tensor(new long[] { 0, 1, 1 }), 2));
        Assert.That(e4.PerClassAccuracy()[..2], Is.EqualTo(new[] { 1.0, 0.0 }));
        Assert.That(e4.PerClassAccuracy()[2..].All(double.IsNaN), "classes 2 and 3 have no samples");
        Assert.That((e4.Accuracy, e4.TopK), Is.EqualTo((1.0 / 3, 2.0 / 3)));
    }

    sealed class Identity : nn.Module<Tensor, Tensor>
    {
        public Identity() : base("identity") => register_parameter("p", new TorchSharp.Modules.Parameter(zeros(1)));
        public override Tensor forward(Tensor x) => x.alias();
    }

    /// <summary>A copy of the weights after each epoch.</summary>
    sealed class WeightsAfterEpoch : Callback
    {
        public readonly List<float[]> Copies = [];
        public override void OnEpochEnd(int epoch, Logs logs) => Copies.Add(Flat(Model.Network));
        public static float[] Flat(nn.Module m)
        {
            using var _ = NewDisposeScope();
            return cat(m.parameters().Select(p => p.detach().flatten()).ToList()).data<float>().ToArray();
        }
    }

    [Test]
    public void Early_stopping_restores_the_best_weights_and_frees_its_copies()
    {
        (List<float[]> Seen, float[] Final, long Live) Run(bool restore)
        {
            long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            manual_seed(0);
            var x = randn(4, 3, 32, 32);
            using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2)), CPU, 2);
            model.Compile(new CompileOptions(Optimizers.AdamW(1e-2, 0), Losses.CrossEntropy()));
            var data = new TensorData(x, tensor(new long[] { 0, 1, 0, 1 }), 4);
            var seen = new WeightsAfterEpoch();
            // The first epoch sets the best; no later one gains 10 points, so training stops after two more.
            model.Fit(data, 10, data, [seen, new EarlyStopping("val_loss", patience: 2, minDelta: 10, restoreBestWeights: restore)]);
            return (seen.Copies, WeightsAfterEpoch.Flat(model.Network), TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount - before);
        }
        var kept = Run(restore: false);
        var restored = Run(restore: true);
        Assert.That(restored.Seen, Has.Count.EqualTo(3));
        Assert.That(restored.Seen[2], Is.Not.EqualTo(restored.Seen[0]), "the weights moved after the best epoch");
        Assert.That(kept.Final, Is.EqualTo(kept.Seen[2]), "without restoring, the last weights stay");
        Assert.That(restored.Final, Is.EqualTo(restored.Seen[0]), "the best epoch's weights are back");
        Assert.That(restored.Live, Is.EqualTo(kept.Live), "the saved copies are freed");
    }

    [Test]
    public void Early_stopping_stops_after_patience_epochs()
    {
        using var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2)), CPU, 2);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-12, 0), Losses.CrossEntropy()));
        var data = new TensorData(randn(4, 3, 32, 32), tensor(new long[] { 0, 1, 0, 1 }), 4);
        var stop = new EarlyStopping("val_loss", patience: 2, minDelta: 10);
        var history = model.Fit(data, 10, data, [stop]);
        Assert.That(history.Epochs, Has.Count.EqualTo(3), "first epoch sets the best, two more without a 10-point gain stop it");
        Assert.That(model.StopReason, Does.Contain("early stopping"));
    }
}
