using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

public class ScheduleTests
{
    [Test]
    public void Cosine_equals_pytorch_CosineAnnealingLR_first_middle_last()
    {
        var lr = Schedules.CosineAnnealing(1e-3, 1e-5, 100);
        Assert.That(lr(0), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(lr(50), Is.EqualTo((1e-3 + 1e-5) / 2).Within(1e-15));
        Assert.That(lr(99), Is.EqualTo(1e-5 + (1e-3 - 1e-5) * (1 + Math.Cos(Math.PI * 99 / 100)) / 2).Within(1e-15));
        Assert.That(lr(99), Is.EqualTo(1.02443e-5).Within(1e-9));
        Assert.That(lr(100), Is.EqualTo(1e-5).Within(1e-15));
        // PyTorch steps the scheduler with its recursive (chainable) form; the closed form must agree at every epoch.
        double prev = 1e-3;
        for (int t = 1; t < 100; t++)
        {
            double next = (1 + Math.Cos(Math.PI * t / 100)) / (1 + Math.Cos(Math.PI * (t - 1) / 100)) * (prev - 1e-5) + 1e-5;
            Assert.That(lr(t), Is.EqualTo(next).Within(1e-12), $"epoch {t}");
            prev = next;
        }
    }

    [Test]
    public void Warmup_cosine_rises_linearly_then_decays_to_the_floor()
    {
        var lr = Schedules.WarmupCosine(1e-3, 1e-5, 1000, 100);
        Assert.That(lr(0), Is.EqualTo(1e-5).Within(1e-15));
        Assert.That(lr(49), Is.EqualTo(5e-4).Within(1e-15));
        Assert.That(lr(100), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(lr(550), Is.EqualTo((1e-3 + 1e-5) / 2).Within(1e-12));
        Assert.That(lr(1000), Is.EqualTo(1e-5).Within(1e-15));
        Assert.That(lr(1500), Is.EqualTo(1e-5).Within(1e-15), "past the last step it stays at the floor");
        var noWarmup = Schedules.WarmupCosine(1e-3, 0, 10, 0);
        Assert.That(noWarmup(0), Is.EqualTo(1e-3), "no warm-up starts at the base rate");
        Assert.That(noWarmup(5), Is.EqualTo(5e-4).Within(1e-15));
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 0, 0), Throws.ArgumentException);
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 10, -1), Throws.ArgumentException);
        Assert.That(Schedules.WarmupCosine(1e-3, 0, 1, 0)(0), Is.EqualTo(1e-3), "one step, no warm-up, is allowed");
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 10, 10), Throws.ArgumentException);
        Assert.That(() => Schedules.CosineAnnealing(1e-3, 0, 0), Throws.ArgumentException.With.Message.Contains("T_max must be at least 1"));
        Assert.That(Schedules.CosineAnnealing(1e-3, 0, 1)(1), Is.EqualTo(0).Within(1e-18), "one epoch of cosine is allowed");
    }
}

/// <summary>The Keras callbacks a library user adds to Fit: each one's effect, read from the model and the files.</summary>
public class KerasCallbackTests() : WithTempDir("km-callbacks-")
{
    static KerasModel Tiny()
    {
        manual_seed(0);
        var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2)), CPU, 2);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy()));
        return model;
    }

    static TensorData Data()
    {
        manual_seed(1);
        return new TensorData(randn(8, 3, 32, 32), tensor(new long[] { 0, 1, 0, 1, 0, 1, 0, 1 }), 2);
    }

    static Logs Epoch(double loss, double accuracy, double? valLoss = null, double? valAccuracy = null)
    {
        var l = Logs.Empty.With("loss", loss).With("accuracy", accuracy).With("lr", 1e-3).With("seconds", 1);
        if (valLoss is double vl) l = l.With("val_loss", vl);
        if (valAccuracy is double va) l = l.With("val_accuracy", va);
        return l;
    }

    /// <summary>Makes batch <paramref name="batch"/> of epoch <paramref name="epoch"/> non-finite (a NaN weight before its step).</summary>
    sealed class PoisonAt(int epoch, int batch) : Callback
    {
        int current;
        public int BatchesRun;
        public override void OnEpochBegin(int e, Logs logs) => current = e;
        public override void OnBatchBegin(int b, Logs logs)
        {
            if (current != epoch || b != batch) return;
            using var _ = no_grad();
            Model.Network.parameters().First().fill_(double.NaN);
        }
        public override void OnBatchEnd(int b, Logs logs) { if (current == epoch) BatchesRun++; }
    }

    [TestCase(1, 1, 2), TestCase(3, 0, 3), TestCase(4, 2, 4)]
    public void TerminateOnNaN_stops_at_its_next_check_and_names_the_first_bad_batch(int checkEvery, int badBatch, int batchesRun)
    {
        using var model = Tiny();
        var poison = new PoisonAt(1, badBatch);
        var history = model.Fit(Data(), 5, null, [poison, new TerminateOnNaN(checkEvery)]);
        Assert.That(poison.BatchesRun, Is.EqualTo(batchesRun), "the batches of the bad epoch that ran");
        Assert.That(history.Epochs, Has.Count.EqualTo(2), "the bad epoch ends the run");
        Assert.That(model.Failed && model.StopTraining);
        Assert.That(model.StopReason, Is.EqualTo($"loss became NaN or infinite at epoch 2, batch {badBatch + 1}; stopped"));
    }

    [Test]
    public void TerminateOnNaN_at_the_end_of_an_epoch_reads_the_bad_batch_the_validation_loss_and_the_weights()
    {
        using var model = Tiny();
        var stop = new TerminateOnNaN(checkEveryBatches: 1000) { Model = model };
        stop.OnEpochBegin(2, Logs.Empty);
        stop.OnEpochEnd(2, Epoch(0.5, 0.5, 0.7, 0.5));
        Assert.That(model.StopTraining || model.Failed, Is.False, "a finite epoch without the bad-batch entry goes on");
        stop.OnEpochEnd(2, Epoch(0.5, 0.5, 0.7, 0.5).With("first_nonfinite_batch", -1));
        Assert.That(model.StopTraining, Is.False);
        stop.OnEpochEnd(2, Epoch(double.NaN, 0.5).With("first_nonfinite_batch", 6));
        Assert.That((model.StopTraining, model.Failed, model.StopReason), Is.EqualTo((true, true, "loss became NaN or infinite at epoch 3, batch 7; stopped")));

        (model.StopTraining, model.Failed, model.StopReason) = (false, false, null);
        stop.OnEpochEnd(4, Epoch(0.5, 0.5, double.PositiveInfinity, 0.5));
        Assert.That((model.StopTraining, model.Failed, model.StopReason), Is.EqualTo((true, true, "validation loss became NaN or infinite at epoch 5; stopped")));

        (model.StopTraining, model.Failed, model.StopReason) = (false, false, null);
        using (no_grad()) model.Network.named_buffers().First(b => b.name == "features.0.1.running_var").buffer.fill_(double.NaN);
        stop.OnEpochEnd(4, Epoch(0.5, 0.5, 0.7, 0.5));
        Assert.That((model.StopTraining, model.Failed, model.StopReason), Is.EqualTo((true, true, "'features.0.1.running_var' became NaN or infinite at epoch 5; stopped")));
    }

    [Test]
    public void ModelCheckpoint_keeps_last_every_epoch_and_best_on_a_strictly_higher_accuracy_and_skips_a_non_finite_epoch()
    {
        using var model = Tiny();
        var saved = new List<(int Epoch, bool Best)>();
        var ckpt = new ModelCheckpoint(dir, (e, _, best) => saved.Add((e, best))) { Model = model };
        ckpt.OnEpochEnd(0, Epoch(double.NaN, 0.9, 0.7, 0.9));
        Assert.That(Directory.GetFiles(dir), Is.Empty, "a non-finite epoch saves nothing");
        Assert.That(saved, Is.Empty);

        // Without validation it ranks by training accuracy; with it, by val_accuracy; a tie keeps the earlier epoch.
        ckpt.OnEpochEnd(0, Epoch(0.9, 0.5));
        ckpt.OnEpochEnd(1, Epoch(0.8, 0.9, 0.7, 0.25));
        Assert.That((ckpt.BestEpoch, ckpt.BestValue), Is.EqualTo((1, 0.5)), "val_accuracy 0.25 is not better than 0.5");
        ckpt.OnEpochEnd(2, Epoch(0.7, 0.9, 0.6, 0.75));
        byte[] bestBytes = File.ReadAllBytes(Path.Combine(dir, "best.safetensors"));
        using (no_grad()) model.Network.parameters().First().add_(1);
        ckpt.OnEpochEnd(3, Epoch(0.6, 0.9, 0.6, 0.75));
        Assert.That((ckpt.BestEpoch, ckpt.BestValue), Is.EqualTo((3, 0.75)));
        Assert.That(saved, Is.EqualTo(new[] { (0, true), (1, false), (2, true), (3, false) }));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "best.safetensors")), Is.EqualTo(bestBytes), "a tie does not overwrite best");
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "last.safetensors")), Is.Not.EqualTo(bestBytes), "last follows every epoch");
        Assert.That(File.Exists(Path.Combine(dir, "optimizer.bin")));
    }

    [Test]
    public void CsvLogger_writes_the_table_after_every_epoch_and_replaces_rows_from_the_resumed_epoch_on()
    {
        string path = Path.Combine(dir, "history.csv");
        HistoryRow Row(int epoch) => new(epoch, 1.0 / epoch, 0.5, null, null, null, 1e-3, 2);
        var log = new CsvLogger(path, [Row(1), Row(2), Row(3)]);
        Assert.That(log.Rows.Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2, 3 }), "earlier rows are kept until an epoch is trained again");
        log.OnEpochEnd(1, Epoch(0.25, 0.75, 0.5, 0.5));
        Assert.That(log.Rows.Select(r => (r.Epoch, r.TrainLoss)), Is.EqualTo(new[] { (1, 1.0), (2, 0.25) }), "epoch 2 trained again: its row replaced, epoch 3's dropped");
        var lines = File.ReadAllLines(path);
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[0], Is.EqualTo(HistoryRow.Header));
        Assert.That(lines[2], Does.StartWith("2,0.25,0.75,0.5,0.5,"));
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "history.json"))))
            Assert.That(json.RootElement.GetArrayLength(), Is.EqualTo(2));
        var fresh = new CsvLogger(Path.Combine(dir, "fresh.csv"));
        fresh.OnEpochEnd(0, Epoch(0.5, 0.5));
        Assert.That(fresh.Rows.Select(r => r.Epoch), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void EarlyStopping_honours_min_delta_skips_missing_or_nan_values_and_starts_afresh_each_fit()
    {
        using var model = Tiny();
        int? StopsAt(EarlyStopping es, string key, params double[] values)
        {
            model.StopTraining = false;
            model.StopReason = null;
            es.Model = model;
            es.OnTrainBegin(Logs.Empty);
            for (int e = 0; e < values.Length && !model.StopTraining; e++) es.OnEpochEnd(e, Logs.Empty.With(key, values[e]));
            return model.StopTraining ? es.StoppedEpoch : null;
        }
        // min_delta: a gain of 0.05 is not a gain of 0.1, so after the first epoch nothing counts; 0.2 does.
        Assert.That(StopsAt(new EarlyStopping("val_accuracy", 2, minDelta: 0.1), "val_accuracy", 0.5, 0.55, 0.6), Is.EqualTo(2));
        Assert.That(StopsAt(new EarlyStopping("val_accuracy", 2, minDelta: 0.1), "val_accuracy", 0.5, 0.55, 0.75, 0.8, 0.8), Is.EqualTo(4));
        Assert.That(StopsAt(new EarlyStopping("val_loss", 2, minDelta: 0.1), "val_loss", 1.0, 0.95, 0.7, 0.65, 0.65), Is.EqualTo(4));
        // NaN and a missing monitor count neither as a gain nor as a miss.
        Assert.That(StopsAt(new EarlyStopping("val_loss", 1), "val_loss", 1.0, double.NaN, double.NaN, 0.5), Is.Null);
        Assert.That(StopsAt(new EarlyStopping("val_loss", 1), "loss", 1.0, 2.0, 3.0), Is.Null);
        // The direction may be given: a metric without "acc" in its name where higher is better.
        Assert.That(StopsAt(new EarlyStopping("val_top5", 1, higherIsBetter: true), "val_top5", 0.5, 0.6, 0.7), Is.Null);
        Assert.That(StopsAt(new EarlyStopping("val_top5", 1), "val_top5", 0.5, 0.6), Is.EqualTo(1), "lower is better unless told");
        Assert.That(model.StopReason, Is.EqualTo("early stopping: val_top5 did not improve for 1 epochs"));
        // A second Fit with the same callback starts with no best and no waiting.
        var again = new EarlyStopping("val_accuracy", 2);
        Assert.That(StopsAt(again, "val_accuracy", 0.9, 0.8), Is.Null);
        Assert.That(StopsAt(again, "val_accuracy", 0.1, 0.2, 0.3), Is.Null, "0.1 is the first value of a new fit, not a miss against 0.9");
    }

    [Test]
    public void Throttle_sleeps_after_every_batch()
    {
        using var model = Tiny();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        model.Fit(Data(), 1, null, [new Throttle(150)]);
        Assert.That(clock.ElapsedMilliseconds, Is.GreaterThanOrEqualTo(4 * 150), "four batches, at least 150 ms each");
    }

    [Test]
    public void A_stop_reason_already_given_is_kept_by_later_callbacks()
    {
        using var model = Tiny();
        model.StopReason = "stopped by the user";
        var es = new EarlyStopping("val_loss", 1) { Model = model };
        es.OnTrainBegin(Logs.Empty);
        es.OnEpochEnd(0, Epoch(1, 0.5, 0.5));
        es.OnEpochEnd(1, Epoch(1, 0.5, 0.9));
        var nan = new TerminateOnNaN() { Model = model };
        nan.OnEpochEnd(1, Epoch(1, 0.5, double.NaN));
        Assert.That((model.StopTraining, model.StopReason), Is.EqualTo((true, "stopped by the user")));
    }

    [Test]
    public void The_per_step_schedule_sets_the_rate_an_epoch_begins_with_and_history_logs_it()
    {
        using var model = Tiny();
        var lr = Schedules.WarmupCosine(0.01, 0, 12, 2);
        var history = model.Fit(Data(), 3, null, [new StepLearningRateScheduler(lr, 4)]);
        Assert.That(history.Series("lr"), Is.EqualTo(new[] { lr(0), lr(4), lr(8) }), "each epoch's first step");
    }

    [Test]
    public void History_rows_carry_every_logged_column()
    {
        var row = Rows.From(2, Epoch(0.5, 0.25, 0.75, 0.125).With("val_top5", 0.875));
        Assert.That(row, Is.EqualTo(new HistoryRow(3, 0.5, 0.25, 0.75, 0.125, 0.875, 1e-3, 1)));
        Assert.That(Rows.From(0, Epoch(0.5, 0.25)), Is.EqualTo(new HistoryRow(1, 0.5, 0.25, null, null, null, 1e-3, 1)));
    }

    [Test]
    public void Logs_print_as_sorted_key_value_pairs()
    {
        Assert.That(Logs.Empty.With("loss", 1.25).With("accuracy", 0.123456789).ToString(), Is.EqualTo("accuracy=0.123457, loss=1.25"));
        Assert.That(Logs.Empty.ToString(), Is.Empty);
    }
}

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

public class RunFolderTests() : WithTempDir("km-run")
{
    /// <summary>A small seeded network, its run folder and commit callback, and four images of two classes.</summary>
    static (KerasModel Model, RunFolder Run, EpochCommit Commit, TensorData Data) Tiny(string dir, bool tensorBoard = false)
    {
        manual_seed(0);
        var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2)), CPU, 2);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy()));
        var run = RunFolder.OpenFresh(dir, tensorBoard);
        return (model, run, new EpochCommit(run, TrainerState.Empty, 4), new TensorData(randn(4, 3, 32, 32), tensor(new long[] { 0, 1, 0, 1 }), 4));
    }

    [Test]
    public void A_nan_epoch_after_a_good_one_leaves_every_committed_file_as_it_was()
    {
        var (model, run, commit, data) = Tiny(dir);
        using var _m = model;
        using var _r = run;
        Assert.That(commit.State.History, Is.Not.Null.And.Empty, "a new run starts with an empty history");
        model.Fit(data, 1, data, [commit]);
        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock")).Order()
            .ToDictionary(f => f, File.ReadAllBytes);
        Assert.That(files.Keys.Select(f => Path.GetRelativePath(dir, f)), Is.EquivalentTo(new[]
        {
            "best.safetensors", "last.safetensors", "history.csv", "history.json", "trainer_state.json",
            "checkpoints/epoch-0001.safetensors", "checkpoints/epoch-0001.optimizer.bin",
        }));
        // Epoch 2 ends with a non-finite loss: nothing is committed.
        commit.Model = model;
        commit.OnEpochEnd(1, Logs.Empty.With("loss", double.NaN).With("accuracy", 0.5).With("lr", 1e-3).With("seconds", 1));
        var after = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock")).Order().ToList();
        Assert.That(after, Is.EqualTo(files.Keys.ToList()));
        foreach (var f in after) Assert.That(File.ReadAllBytes(f), Is.EqualTo(files[f]), f);
        Assert.That(commit.State.CompletedEpochs, Is.EqualTo(1));
    }

    [Test]
    public void TensorBoard_events_are_one_whole_file_per_committed_epoch_and_nothing_else()
    {
        var (model, run, commit, data) = Tiny(dir, tensorBoard: true);
        using (model)
        using (run) model.Fit(data, 2, data, [commit]);
        string tb = Path.Combine(dir, "tensorboard");
        var rows = commit.State.History!; // unrounded (history.csv rounds the seconds)
        Assert.That(rows, Has.Count.EqualTo(2));
        foreach (var r in rows)
        {
            var events = EventFile.Read(Path.Combine(tb, EventFile.Name(r.Epoch)));
            Assert.That(events.Select(e => (e.Step, e.Tag, e.Value)),
                Is.EqualTo(EventFile.Scalars(r).Select(x => ((long)r.Epoch, x.Tag, (float)x.Value))), $"epoch {r.Epoch}");
        }
        // What a kill can leave: an event file of an epoch that was never committed, and a temp file. The next
        // start removes both; the committed epochs' files are untouched.
        EventFile.Write(tb, 3, [("train/loss", 9.0)]);
        File.WriteAllText(Path.Combine(tb, ".events-0003.99.tmp"), "half");
        var kept = Directory.GetFiles(tb).Where(f => !f.Contains("0003")).ToDictionary(f => f, File.ReadAllBytes);
        using (var again = RunFolder.OpenExisting(dir, tensorBoard: true)) again.Publish(again.ReadState()!);
        Assert.That(Directory.GetFiles(tb).Select(Path.GetFileName).Order(StringComparer.Ordinal), Is.EqualTo(new[] { EventFile.Name(1), EventFile.Name(2) }));
        foreach (var (f, bytes) in kept) Assert.That(File.ReadAllBytes(f), Is.EqualTo(bytes));
        // A missing one (killed between the commit and the events) is written by the next start.
        File.Delete(Path.Combine(tb, EventFile.Name(2)));
        using (var again = RunFolder.OpenExisting(dir, tensorBoard: true)) again.Publish(again.ReadState()!);
        Assert.That(EventFile.Read(Path.Combine(tb, EventFile.Name(2))), Has.Count.EqualTo(EventFile.Scalars(rows[1]).Count()));
    }

    [Test]
    public void Event_records_carry_the_crc32c_tensorflow_uses()
    {
        Assert.That(EventFile.Crc32C("123456789"u8), Is.EqualTo(0xE3069283u), "the CRC-32C check value");
        EventFile.Write(dir, 7, [("train/loss", 0.5)]);
        string f = Path.Combine(dir, EventFile.Name(7));
        Assert.That(EventFile.Read(f), Is.EqualTo(new[] { (7L, "train/loss", 0.5f) }));
        var bytes = File.ReadAllBytes(f);
        bytes[^6] ^= 1; // one bit of the last record's data
        File.WriteAllBytes(f, bytes);
        Assert.That(() => EventFile.Read(f), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("checksum"));
    }

    sealed class SpoilRunningVar : Callback
    {
        public override void OnEpochEnd(int epoch, Logs logs)
        {
            if (epoch != 1) return;
            using var _ = no_grad();
            Model.Network.state_dict()["features.0.1.running_var"].fill_(double.NaN);
        }
    }

    [Test]
    public void Non_finite_batchnorm_statistics_stop_the_run_and_are_not_committed()
    {
        var (model, run, commit, data) = Tiny(dir);
        using var _m = model;
        using var _r = run;
        // The loss of epoch 2 is finite; only a buffer is not (the spoiler runs before the checks, as a bad update would).
        model.Fit(data, 3, null, [new SpoilRunningVar(), new TerminateOnNaN(), commit]);
        Assert.That(model.StopReason, Is.EqualTo("'features.0.1.running_var' became NaN or infinite at epoch 2; stopped"));
        Assert.That(commit.State.CompletedEpochs, Is.EqualTo(1), "epoch 2 is not committed");
        Assert.That(run.ReadState()!.CompletedEpochs, Is.EqualTo(1));
    }

    [Test]
    public void A_second_process_cannot_open_a_held_run_folder()
    {
        using (RunFolder.OpenFresh(dir))
        {
            // flock is per open file description: a second open in this process conflicts as another process's would.
            Assert.That(() => RunFolder.OpenFresh(dir), Throws.InstanceOf<Keras.MobileNet.Backend.UserError>().With.Message.Contains("in use by another training"));
        }
        using (RunFolder.OpenFresh(dir)) { } // released with the first
    }
}

public class CheckpointFileTests
{
    static byte[] File(ulong headerLength, string header, int dataBytes = 0)
    {
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, headerLength);
        h.CopyTo(b, 8);
        return b;
    }

    static IEnumerable<TestCaseData> Hostile()
    {
        yield return new TestCaseData(File(2_000_000_000, "{}"), "claims 2,000,000,000 bytes").SetName("Header_longer_than_the_file");
        yield return new TestCaseData(new byte[5], "too short").SetName("Shorter_than_a_length");
        yield return new TestCaseData(File(4, "nope"), "not JSON").SetName("Header_not_json");
        string t = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000,1000],\"data_offsets\":[0,4000000]}}";
        yield return new TestCaseData(File((ulong)t.Length, t, 16), "tensor 'w' has data_offsets outside the file").SetName("Tensor_past_the_end");
        string q = "{\"w\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        yield return new TestCaseData(File((ulong)q.Length, q, 8), "tensor 'w' has no known dtype").SetName("Unknown_dtype");
        string m = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        yield return new TestCaseData(File((ulong)m.Length, m, 8), "not matching its shape").SetName("Offsets_not_matching_shape");
    }

    [TestCaseSource(nameof(Hostile))]
    public void A_hostile_safetensors_file_is_a_clear_error_before_any_allocation(byte[] bytes, string why)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("km-st").FullName, "x.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2));
        Assert.That(() => Checkpoints.Load(net, path), Throws.InstanceOf<Keras.MobileNet.Backend.UserError>()
            .With.Message.StartsWith($"{path} is not a readable safetensors checkpoint: ").And.Message.Contains(why));
    }

    [Test]
    public void A_real_checkpoint_passes_the_check()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("km-st").FullName, "ok.safetensors");
        using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2));
        Checkpoints.Save(net, path);
        Assert.That(() => Checkpoints.CheckSafetensors(path), Throws.Nothing);
        Assert.That(() => Checkpoints.CheckSafetensors(Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors")), Throws.Nothing, "torchvision's own file");
    }
}
