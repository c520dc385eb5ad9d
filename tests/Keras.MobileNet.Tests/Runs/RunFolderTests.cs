using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

public class RunFolderTests() : WithTempDir("km-run")
{
    /// <summary>A small seeded network, its run folder and commit callback, and four images of two classes.</summary>
    static (KerasModel Model, RunFolder Run, ModelCheckpoint Commit, TensorData Data) Tiny(string dir, bool tensorBoard = false)
    {
        var model = TinyModel.Build();
        var run = RunFolder.OpenFresh(dir, tensorBoard);
        return (model, run, new ModelCheckpoint(run, TrainerState.Empty, 4), new TensorData(randn(4, 3, 32, 32), tensor(new long[] { 0, 1, 0, 1 }), 4));
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
