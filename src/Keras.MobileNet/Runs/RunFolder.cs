using Keras.MobileNet.Backend;
using TorchSharp;

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
        if (History is not null && History.Count != CompletedEpochs)
            return $"history has {History.Count} rows, completed_epochs says {CompletedEpochs}";
        foreach (var (field, name) in new[] { ("weights", Weights), ("optimizer", Optimizer), ("best_weights", BestWeights) })
            if (name is not null && (System.IO.Path.IsPathRooted(name) || name.Split('/', '\\').Contains("..")))
                return $"{field} is '{name}', outside the run folder";
        return null;
    }
}

/// <summary>
/// A run folder, held by one process at a time (an OS lock on .lock, released when the process dies), and its
/// commit protocol. An epoch writes checkpoints/epoch-NNNN.{safetensors,optimizer.bin}, then renames the new
/// trainer_state.json into place (the commit), then republishes the derived files (last.safetensors,
/// best.safetensors, history.csv, history.json, and with TensorBoard one event file per committed epoch) and deletes
/// what no state names. A kill at any instant leaves
/// either the old state or the new one; opening the folder again republishes and sweeps, so a resumed run continues
/// from exactly the last committed epoch.
/// </summary>
public sealed class RunFolder : IDisposable
{
    readonly FileStream lockFile;
    readonly bool tensorBoard;
    public string Path { get; }
    string P(string name) => System.IO.Path.Combine(Path, name);
    public string StatePath => P(RunReader.State);

    RunFolder(string path, FileStream lockFile, bool tensorBoard) => (Path, this.lockFile, this.tensorBoard) = (path, lockFile, tensorBoard);

    public string TensorBoardDir => P("tensorboard");

    /// <summary>
    /// Creates the folder if needed and takes its lock; another live process holding it is a clear error. With
    /// <paramref name="tensorBoard"/>, each committed epoch also gets its TensorBoard event file.
    /// </summary>
    public static RunFolder Open(string path, bool tensorBoard = false)
    {
        Directory.CreateDirectory(path);
        try
        {
            // FileShare.None is an exclusive flock on Unix: held until this process closes the file or dies.
            var f = new FileStream(System.IO.Path.Combine(path, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            return new RunFolder(path, f, tensorBoard);
        }
        catch (IOException)
        {
            throw new UserError($"{path} is in use by another training (its .lock is held); wait for it or use another --out");
        }
    }

    public TrainerState? ReadState()
    {
        return File.Exists(StatePath) ? Files.ReadJson<TrainerState>(StatePath, s => s.Problem()) : null;
    }

    /// <summary>
    /// Loads the committed epoch's weights and optimizer state (older runs kept them under fixed names); a missing or
    /// unreadable file is one line naming it.
    /// </summary>
    public void Restore(TrainerState s, torch.nn.Module network, torch.optim.Optimizer optimizer)
    {
        string weights = P(s.Weights ?? "last.safetensors"), opt = P(s.Optimizer ?? "optimizer.bin");
        foreach (var f in new[] { weights, opt })
            if (!File.Exists(f)) throw new UserError($"{f} is missing: the run folder was changed by hand (--resume needs epoch {s.CompletedEpochs}'s weights and optimizer state)");
        Checkpoints.Load(network, weights);
        try { Checkpoints.LoadOptimizer(optimizer, opt); }
        catch (Exception e) when (e is not (OutOfMemoryException or UserError))
        {
            throw new UserError($"{opt} is not a readable optimizer state ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>
    /// Commits a finished epoch: its weights and optimizer state under names that carry the epoch, then the state that
    /// names them (one rename), then the derived files.
    /// </summary>
    public TrainerState Commit(torch.nn.Module network, torch.optim.Optimizer optimizer, TrainerState next, bool isBest)
    {
        Directory.CreateDirectory(P("checkpoints"));
        string weights = $"checkpoints/epoch-{next.CompletedEpochs:D4}.safetensors";
        string opt = $"checkpoints/epoch-{next.CompletedEpochs:D4}.optimizer.bin";
        Checkpoints.Save(network, P(weights));
        AtomicFile.Write(P(opt), tmp => Checkpoints.SaveOptimizer(optimizer, tmp));
        var state = next with { Weights = weights, Optimizer = opt, BestWeights = isBest ? weights : next.BestWeights };
        WriteState(state);
        Publish(state);
        return state;
    }

    public void WriteState(TrainerState state) => Files.WriteJson(StatePath, state);

    /// <summary>Makes the derived files agree with the state and removes what it does not name (and temp files).</summary>
    public void Publish(TrainerState state)
    {
        if (state.Weights is not null) CopyAtomic(P(state.Weights), P("last.safetensors"));
        if (state.BestWeights is not null) CopyAtomic(P(state.BestWeights), P(RunReader.Best));
        if (state.History is { } rows)
        {
            Files.WriteAtomic(P(RunReader.History), HistoryRow.ToCsv(rows));
            Files.WriteJson(P("history.json"), rows);
            // Events only for committed epochs, each written once: an epoch trained again after a kill never shows twice.
            if (tensorBoard)
                foreach (var r in rows.Where(r => !File.Exists(System.IO.Path.Combine(TensorBoardDir, EventFile.Name(r.Epoch)))))
                    EventFile.Write(TensorBoardDir, r.Epoch, EventFile.Scalars(r));
        }
        Sweep(state);
    }

    /// <summary>Deletes checkpoint and event files no state names, and temp files a killed process left.</summary>
    public void Sweep(TrainerState? state)
    {
        int committed = state?.CompletedEpochs ?? 0;
        var keep = new HashSet<string?> { state?.Weights, state?.Optimizer, state?.BestWeights }
            .Where(k => k is not null).Select(k => System.IO.Path.GetFullPath(P(k!))).ToHashSet();
        var doomed = Directory.Exists(P("checkpoints"))
            ? Directory.GetFiles(P("checkpoints")).Where(f => !keep.Contains(System.IO.Path.GetFullPath(f))).ToList() : [];
        doomed.AddRange(Directory.GetFiles(Path, "*.tmp"));
        if (Directory.Exists(TensorBoardDir))
        {
            var events = Enumerable.Range(1, committed).Select(e => EventFile.Name(e)).ToHashSet();
            doomed.AddRange(Directory.GetFiles(TensorBoardDir, "*.tmp"));
            doomed.AddRange(Directory.GetFiles(TensorBoardDir, "events.out.tfevents.*").Where(f => !events.Contains(System.IO.Path.GetFileName(f))));
        }
        foreach (var f in doomed.Order(StringComparer.Ordinal))
        {
            FaultPoints.Hit();
            File.Delete(f);
        }
    }

    static void CopyAtomic(string from, string to)
    {
        if (!File.Exists(from)) throw new UserError($"{from} is missing: the run folder was changed by hand");
        AtomicFile.Write(to, tmp => File.Copy(from, tmp, overwrite: true));
    }

    public void Dispose() => lockFile.Dispose();
}
