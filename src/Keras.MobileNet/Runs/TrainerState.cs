namespace Keras.MobileNet.Runs;

/// <summary>
/// trainer_state.json, the commit record of a run: the last completed epoch, the files that hold its weights and
/// optimizer state, the best epoch so far and its weights, and every history row. Renaming it into place commits an
/// epoch; everything else in the folder is either named by it or derived from it.
/// </summary>
public sealed record TrainerState(int CompletedEpochs, double BestValAccuracy, int BestEpoch, double TrainSeconds, long TrainImages, bool Finished,
    string? Weights = null, string? Optimizer = null, string? BestWeights = null, IReadOnlyList<HistoryRow>? History = null)
{
    public static readonly TrainerState Empty = new(0, double.NegativeInfinity, -1, 0, 0, false);

    /// <summary>
    /// The state after one more epoch: its row replaces any row of that epoch or later, and it is the best when its
    /// val accuracy (train accuracy without validation) is above every earlier one; a tie keeps the earlier epoch.
    /// </summary>
    public (TrainerState Next, bool IsBest) After(HistoryRow row, long images)
    {
        double v = row.ValAccuracy ?? row.TrainAccuracy;
        bool best = v > BestValAccuracy;
        var rows = (History ?? []).Where(r => r.Epoch < row.Epoch).Append(row).ToList();
        return (this with
        {
            CompletedEpochs = row.Epoch, TrainSeconds = TrainSeconds + row.Seconds, TrainImages = TrainImages + images,
            BestValAccuracy = best ? v : BestValAccuracy, BestEpoch = best ? row.Epoch : BestEpoch, History = rows,
        }, best);
    }

    /// <summary>What is wrong with a state read from a file, or null. The files it names must lie inside the run folder.</summary>
    public string? Problem()
    {
        if (CompletedEpochs < 1) return $"completed_epochs is {CompletedEpochs}: no epoch was committed";
        if (double.IsNaN(BestValAccuracy) || BestValAccuracy > 1) return $"best_val_accuracy is {BestValAccuracy}, not an accuracy";
        if (BestEpoch > CompletedEpochs) return $"best_epoch is {BestEpoch}, after completed_epochs {CompletedEpochs}";
        if (History is not null && History.Count != CompletedEpochs)
            return $"history has {History.Count} rows, completed_epochs says {CompletedEpochs}";
        foreach (var (field, name) in new[] { ("weights", Weights), ("optimizer", Optimizer), ("best_weights", BestWeights) })
            if (name is not null && (System.IO.Path.IsPathRooted(name) || name.Split('/', '\\').Contains("..")))
                return $"{field} is '{name}', outside the run folder";
        return null;
    }
}
