using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

/// <summary>The Keras callbacks a library user adds to Fit: each one's effect, read from the model and the files.</summary>
public class KerasCallbackTests() : WithTempDir("km-callbacks-")
{
    static KerasModel Tiny() => TinyModel.Build();

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
    public void ModelCheckpoint_commits_each_epoch_as_a_run_folder_keeps_best_on_a_strictly_higher_accuracy_and_skips_a_non_finite_epoch()
    {
        using var model = Tiny();
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0)));
        string folder = Path.Combine(dir, "run");
        using (var ckpt = new ModelCheckpoint(folder, tensorBoard: true))
        {
            model.Fit(Data(), 1, callbacks: [ckpt]); // 8 images in batches of 2, counted from the batches
            Assert.That((ckpt.State.CompletedEpochs, ckpt.State.TrainImages, ckpt.State.BestEpoch), Is.EqualTo((1, 8L, 1)));
            ckpt.OnEpochEnd(1, Epoch(double.NaN, 0.9, 0.7, 0.9));
            Assert.That(ckpt.State.CompletedEpochs, Is.EqualTo(1), "a non-finite epoch commits nothing");

            // Without validation it ranks by training accuracy; with it, by val_accuracy; a tie keeps the earlier epoch.
            double first = ckpt.State.BestValAccuracy;
            ckpt.OnEpochEnd(1, Epoch(0.8, 0.9, 0.7, first));
            Assert.That((ckpt.State.BestEpoch, ckpt.State.CompletedEpochs), Is.EqualTo((1, 2)), "a tie is not better");
            byte[] bestBytes = File.ReadAllBytes(Path.Combine(folder, "best.safetensors"));
            using (no_grad()) model.Network.parameters().First().add_(1);
            ckpt.OnEpochEnd(2, Epoch(0.7, 0.9, 0.6, first + 0.25));
            Assert.That(ckpt.State.BestEpoch, Is.EqualTo(3));
            Assert.That(File.ReadAllBytes(Path.Combine(folder, "best.safetensors")), Is.Not.EqualTo(bestBytes), "a higher accuracy replaces best");
            Assert.That(File.ReadAllBytes(Path.Combine(folder, "last.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(folder, "best.safetensors"))));
        }
        // The files of any run, agreeing with its trainer_state.json: the history table, one event file per epoch, and
        // only the current epoch's and the best epoch's checkpoints.
        var state = Files.ReadJson<TrainerState>(Path.Combine(folder, "trainer_state.json"), s => s.Problem());
        Assert.That((state.CompletedEpochs, state.BestEpoch, state.BestWeights), Is.EqualTo((3, 3, "checkpoints/epoch-0003.safetensors")));
        Assert.That(File.ReadAllLines(Path.Combine(folder, "history.csv")).Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "1", "2", "3" }));
        Assert.That(Directory.GetFiles(Path.Combine(folder, "tensorboard")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { 1, 2, 3 }.Select(e => EventFile.Name(e))));
        Assert.That(Directory.GetFiles(Path.Combine(folder, "checkpoints")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "epoch-0003.optimizer.bin", "epoch-0003.safetensors" }));
        // A folder of someone else's files is refused, and left as it was.
        string foreign = Path.Combine(dir, "foreign");
        Directory.CreateDirectory(foreign);
        File.WriteAllText(Path.Combine(foreign, "notes.txt"), "mine");
        Assert.That(() => new ModelCheckpoint(foreign), Throws.TypeOf<Backend.UserError>().With.Message.Contains("notes.txt"));
        Assert.That(Directory.GetFileSystemEntries(foreign).Select(Path.GetFileName), Is.EqualTo(new[] { "notes.txt" }));
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
