using Keras.MobileNet.Backend;
using TorchSharp;

namespace Keras.MobileNet.Runs;

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

    /// <summary>The lock file's name, and what this program writes in it: the mark of a folder that holds one of its runs.</summary>
    public const string LockName = ".lock";
    const string Signature = "keras-mobilenet run folder\n";

    /// <summary>The files a run writes at the top of its folder (figures and report.md included); nothing else there is ever replaced or removed.</summary>
    public static readonly IReadOnlySet<string> OwnFiles = new HashSet<string>(
    [
        RunReader.Card, RunReader.Options, DataRecord.File, RunReader.State, RunReader.Summary, RunReader.History, RunReader.Confusion, RunReader.Best,
        "history.json", "last.safetensors", .. RunReader.Drawn,
    ], StringComparer.Ordinal);

    static readonly System.Text.RegularExpressions.Regex CheckpointName = new(@"^epoch-\d{4,}\.(safetensors|optimizer\.bin)$"),
        EventName = new(@"^events\.out\.tfevents\.\d{4,}\.keras-mobilenet$"), EventTemp = new(@"^\.events-\d{4,}\.\d+\.tmp$");

    /// <summary>
    /// Opens a run folder for a fresh start: creates it if needed and takes its lock. A folder that exists, is not
    /// empty and holds no run of this program is refused (nothing is created in it) unless <paramref name="reuse"/>
    /// says to train beside its files; even then a file a run would write must not be there already.
    /// </summary>
    public static RunFolder OpenFresh(string path, bool tensorBoard = false, bool reuse = false)
    {
        CheckFresh(path, reuse);
        return Open(path, tensorBoard);
    }

    /// <summary>The check of <see cref="OpenFresh"/> alone, so a command can refuse before it loads data or times anything.</summary>
    public static void CheckFresh(string path, bool reuse)
    {
        if (FileKind.Of(path) is PathKind.Regular or PathKind.Special) throw new UserError($"--out {path} is a file, not a folder");
        if (Directory.Exists(path) && !HoldsOwnRun(path) && Directory.EnumerateFileSystemEntries(path).FirstOrDefault() is string first)
        {
            if (!reuse)
                throw new UserError($"--out {path} is not empty and holds no run of this program (it has {System.IO.Path.GetFileName(first)}); " +
                                    "train into a new or empty folder, or add --reuse-out to train beside its files (none of them is touched)");
            if (OwnNamesIn(path).FirstOrDefault() is string clash)
                throw new UserError($"--reuse-out: {clash} is already there and a run would replace it; move it or train into another --out");
        }
    }

    /// <summary>Opens the folder of a run to resume; it must exist (nothing is created).</summary>
    public static RunFolder OpenExisting(string path, bool tensorBoard = false)
    {
        CheckExisting(path);
        return Open(path, tensorBoard);
    }

    /// <summary>A run to resume must be there: a folder holding trainer_state.json.</summary>
    public static void CheckExisting(string path)
    {
        if (!Directory.Exists(path)) throw new UserError($"--resume: {path} does not exist");
        if (!File.Exists(System.IO.Path.Combine(path, RunReader.State))) throw new UserError($"--resume: {path} holds no run to resume (no trainer_state.json)");
    }

    /// <summary>True where the folder's lock file is this program's (older runs left it empty beside their model.json).</summary>
    public static bool HoldsOwnRun(string path)
    {
        string lockPath = System.IO.Path.Combine(path, LockName);
        if (FileKind.Stat(lockPath) is not (PathKind.Regular, var size) || size > 4096) return false;
        string text;
        try { text = File.ReadAllText(lockPath); }
        catch (IOException) { return true; } // held by a live training of ours: FileShare.None
        catch (UnauthorizedAccessException) { return false; }
        return text == Signature || text.Length == 0 && (File.Exists(System.IO.Path.Combine(path, RunReader.Card))
            || Directory.EnumerateFileSystemEntries(path).Count() == 1);
    }

    /// <summary>Entries of a folder with names a run writes (at the top, in checkpoints/ or tensorboard/).</summary>
    static IEnumerable<string> OwnNamesIn(string path)
    {
        foreach (var e in Directory.EnumerateFileSystemEntries(path))
            if (OwnFiles.Contains(System.IO.Path.GetFileName(e)) || System.IO.Path.GetFileName(e) == LockName) yield return e;
        foreach (var (dir, pattern) in new[] { ("checkpoints", CheckpointName), ("tensorboard", EventName) })
            if (Directory.Exists(System.IO.Path.Combine(path, dir)))
                foreach (var e in Directory.EnumerateFileSystemEntries(System.IO.Path.Combine(path, dir)))
                    if (pattern.IsMatch(System.IO.Path.GetFileName(e))) yield return e;
    }

    /// <summary>Creates the folder if needed and takes its lock; another live process holding it is a clear error.</summary>
    static RunFolder Open(string path, bool tensorBoard)
    {
        Directory.CreateDirectory(path);
        string lockPath = System.IO.Path.Combine(path, LockName);
        FileKind.RequireRegularOrMissing(lockPath);
        FileStream f;
        try
        {
            // FileShare.None is an exclusive flock on Unix: held until this process closes the file or dies.
            f = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException)
        {
            throw new UserError($"{path} is not writable here (its {LockName} cannot be opened for writing): check its permissions, or copy the run to a folder you can write");
        }
        catch (IOException e) when (e.HResult == 13 || e.Message.Contains("Read-only file system", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("ermission denied", StringComparison.Ordinal))
        {
            throw new UserError($"{path} is not writable here ({e.Message.Split('\n')[0]})");
        }
        catch (IOException)
        {
            throw new UserError($"{path} is in use by another training (its {LockName} is held); wait for it or use another --out");
        }
        if (f.Length == 0)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(Signature);
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        return new RunFolder(path, f, tensorBoard);
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

    /// <summary>
    /// Deletes the checkpoint and event files a run writes that no state names, and the temp files a killed process of
    /// this program left; only names this program writes are ever removed (foreign files in the folder are left alone).
    /// </summary>
    public void Sweep(TrainerState? state)
    {
        int committed = state?.CompletedEpochs ?? 0;
        var keep = new HashSet<string?> { state?.Weights, state?.Optimizer, state?.BestWeights }
            .Where(k => k is not null).Select(k => System.IO.Path.GetFullPath(P(k!))).ToHashSet();
        static IEnumerable<string> Matching(string dir, Func<string, bool> ours) =>
            Directory.Exists(dir) ? Directory.GetFiles(dir).Where(f => ours(System.IO.Path.GetFileName(f))) : [];
        var doomed = Matching(P("checkpoints"), n => AtomicFile.TempOf(n) is var (t, _) && CheckpointName.IsMatch(t)
            || CheckpointName.IsMatch(n) && !keep.Contains(System.IO.Path.GetFullPath(P("checkpoints/" + n)))).ToList();
        doomed.AddRange(Matching(Path, n => AtomicFile.TempOf(n) is var (t, _) && OwnFiles.Contains(t)));
        var events = Enumerable.Range(1, committed).Select(e => EventFile.Name(e)).ToHashSet();
        doomed.AddRange(Matching(TensorBoardDir, n => EventTemp.IsMatch(n) || EventName.IsMatch(n) && !events.Contains(n)));
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
