using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Engine;

/// <summary>
/// Keras's ModelCheckpoint, CSVLogger and TensorBoard in one callback, through the run folder's commit: the one path
/// every training of this program takes. After each epoch its weights and optimizer state are written under names that
/// carry the epoch, trainer_state.json is renamed into place (the commit), and then last.safetensors,
/// best.safetensors (on a strictly higher val_accuracy, or accuracy without validation), history.csv/.json and, when
/// asked, one TensorBoard event file per epoch follow it. An epoch whose loss, weights or statistics are not finite
/// commits nothing (the last good epoch stays). With the model's <see cref="KerasModel.Card"/>, a folder written this
/// way is read by <c>predict</c>, <c>evaluate</c>, <c>export</c> and <c>plot</c> like any run's.
/// </summary>
public sealed class ModelCheckpoint : Callback, IDisposable
{
    readonly RunFolder run;
    readonly bool ownsFolder;
    readonly int? imagesPerEpoch;
    long imagesThisEpoch;

    /// <summary>The state of the last committed epoch.</summary>
    public TrainerState State { get; private set; }

    /// <summary>
    /// Checkpoints a <see cref="KerasModel.Fit"/> of your own into <paramref name="dir"/>: a new or empty folder, or a
    /// run folder of this program (a folder of other files is refused; nothing in it is touched).
    /// </summary>
    public ModelCheckpoint(string dir, bool tensorBoard = false) : this(RunFolder.OpenFresh(dir, tensorBoard), TrainerState.Empty, null) => ownsFolder = true;

    /// <summary>Commits into an open run folder from <paramref name="start"/> (a resumed run's state).</summary>
    /// <param name="run">The run folder, opened by the caller (who releases it).</param>
    /// <param name="start">The state to continue from: <see cref="TrainerState.Empty"/> for a fresh run.</param>
    /// <param name="imagesPerEpoch">Images an epoch trains, for the run's throughput; null counts the batches' sizes.</param>
    internal ModelCheckpoint(RunFolder run, TrainerState start, int? imagesPerEpoch)
    {
        this.run = run;
        this.imagesPerEpoch = imagesPerEpoch;
        State = start with { History = start.History ?? [] };
    }

    /// <summary>A folder this callback opened gets the model's card (model.json) when the model has one.</summary>
    public override void OnTrainBegin(Logs logs)
    {
        if (ownsFolder && Model.Card is { } card) Files.WriteJson(System.IO.Path.Combine(run.Path, RunReader.Card), card);
    }

    public override void OnEpochBegin(int epoch, Logs logs) => imagesThisEpoch = 0;

    public override void OnBatchEnd(int batch, Logs logs) => imagesThisEpoch += (long)(logs.Get("size") ?? 0);

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (NonFinite.Epoch(logs, Model.Network)) return;
        var (next, best) = State.After(Rows.From(epoch, logs), imagesPerEpoch ?? imagesThisEpoch);
        State = run.Commit(Model.Network, Model.Optimizer!, next, best);
    }

    /// <summary>Releases the folder's lock when this callback opened it.</summary>
    public void Dispose()
    {
        if (ownsFolder) run.Dispose();
    }
}
