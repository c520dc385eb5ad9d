using Keras.MobileNet.Runs;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Training;

/// <summary>
/// Commits each finished epoch to the run folder: the state folds the epoch's history row in (<see cref="TrainerState.After"/>:
/// the row, the best-so-far, the time), the checkpoints are written, and one rename makes the new state current. An
/// epoch whose loss, weights or statistics are not finite commits nothing (the last good one stays).
/// </summary>
public sealed class EpochCommit(RunFolder run, TrainerState start, int imagesPerEpoch) : Callback
{
    public TrainerState State { get; private set; } = start with { History = start.History ?? [] };

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (NonFinite.Epoch(logs, Model.Network)) return;
        var (next, best) = State.After(Rows.From(epoch, logs), imagesPerEpoch);
        State = run.Commit(Model.Network, Model.Optimizer!, next, best);
    }
}
