using Microsoft.Extensions.Logging;
using System.Globalization;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Keras.MobileNet.Weights;
using Keras.MobileNet.Sweeps;

namespace Keras.MobileNet.Training;

/// <summary>The shell around Fit: data, network, callbacks and the run folder.</summary>
public static class Runner
{
    /// <summary>Whether the options ask for a sweep (several widths, or --seeds) rather than one run.</summary>
    public static bool IsSweep(TrainOptions o) => o.Widths.Length > 1 || o.Seeds is not null;

    /// <summary>A sweep (several widths or --seeds): its grid, in the folder <see cref="TrainOptions.Out"/>; null for a single run.</summary>
    public static SweepGrid? Grid(TrainOptions o) =>
        IsSweep(o)
            ? new SweepGrid(Files.Word(o.Arch), o.Widths, o.Seeds ?? [o.Seed], o.Out ?? throw new ArgumentException("a sweep needs --out, the folder of its runs"))
            : null;

    /// <summary>
    /// Trains every run in turn (one, or each cell of a sweep, or the one cell of --task-index); returns one result per
    /// run (a comparison is drawn by the caller). A sweep cell that is complete is skipped and a partial one resumes.
    /// </summary>
    /// <param name="o">The options (validated here).</param>
    /// <param name="log">Where the run reports: what it loads, the estimate, one line per epoch (none by default).</param>
    /// <param name="hooks">The caller's progress display, stop requests and throttle.</param>
    /// <param name="describe">How to show a shorter recipe (the command line: the user's own command with those values);
    /// without it, the recipe's fields.</param>
    public static List<RunResult> TrainAll(TrainOptions o, ILogger? log = null, RunHooks? hooks = null,
        Func<ShorterRecipe, string>? describe = null)
    {
        o.Validate();
        hooks ??= RunHooks.None;
        log ??= Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        if (o.Out is null) throw new ArgumentException("--out is needed: the run folder, or the folder of a sweep's runs");
        var grid = Grid(o);
        var cells = grid is null ? null
            : grid.TaskIndex(o.TaskIndex, _ => null) is int task ? [grid.Cell(task)] : grid.Cells.ToList();
        if (cells is { Count: 1 } && grid!.Count > 1) log.Line(cells[0].ToString());
        var device = TorchRuntime.ResolveDevice(o.Device);
        var results = new List<RunResult>();
        var todo = new List<(TrainOptions Options, double Width, string Folder)>();
        if (cells is null) todo.Add((o, o.Widths[0], o.Out));
        else
            foreach (var c in cells)
            {
                if (RunReader.Completed(c.Folder) is RunResult done) { log.Line($"{c.Folder}: complete, skipped"); results.Add(done); continue; }
                bool partial = File.Exists(Path.Combine(c.Folder, RunReader.State));
                todo.Add((o with { Widths = [c.Width], Seed = c.Seed, Seeds = null, TaskIndex = null, Out = c.Folder, Resume = partial }, c.Width, c.Folder));
            }
        foreach (var (cellOptions, w, folder) in todo) // before any download, decoding or timing
        {
            if (!cellOptions.Resume) { RunFolder.CheckFresh(folder, cellOptions.ReuseOut); continue; }
            RunFolder.CheckExisting(folder);
            if (!File.Exists(Path.Combine(folder, RunReader.Card)))
                throw new UserError($"--resume: {Path.Combine(folder, RunReader.Card)} is missing: it says how to rebuild the run's network; restore it or train into another --out");
            SingleRun.CheckSameRun(folder, cellOptions, w);
        }
        var fresh = todo.Where(t => !t.Options.Resume).Select(t => t.Width).ToList();
        var estimates = fresh.Count == 0 ? null : PrintEstimate(o, fresh, device, log, describe);
        if (o.EstimateOnly || todo.Count == 0) return results;
        string? weights = o.Weights is null ? null : Pretrained.Resolve(o.Weights, o.Data, o.WeightsBaseUrl, log: log); // on --resume too: its preprocessing
        var data = TrainingData.Load(o, device, log, weights);
        foreach (var (planned, w, folder) in todo)
        {
            var cellOptions = planned;
            if (grid is not null)
            {
                // Another process (another task of the same sweep) may have finished or started this cell meanwhile.
                if (RunReader.Completed(folder) is RunResult done) { log.Line($"{folder}: completed meanwhile by another process, skipped"); results.Add(done); continue; }
                cellOptions = planned with { Resume = File.Exists(Path.Combine(folder, RunReader.State)) };
            }
            var result = SingleRun.Train(cellOptions, w, folder, device, data.WithSeed(cellOptions.Seed), hooks, log, estimates?.GetValueOrDefault(w));
            results.Add(result); // a failed cell does not stop the others: each is its own run
        }
        return results;
    }

    /// <summary>Image counts without decoding anything: a scan of the folders, or Imagenette's published counts before download.</summary>
    static (int Train, int Val, int Classes) ImageCounts(TrainOptions o)
    {
        string root = TrainingData.Root(o);
        if (o.Dataset == DatasetKind.Imagenette && !Directory.Exists(Path.Combine(root, "val"))) return (Imagenette.TrainImages, Imagenette.ValImages, 10);
        if (!Directory.Exists(root)) throw new UserError($"data folder {root} does not exist");
        var train = ImageFolder.Scan(root, "train");
        return (train.Samples.Count, ImageFolder.Scan(root, "val", train.Classes).Samples.Count, train.Classes.Count);
    }

    /// <summary>
    /// Times each width on this device, prints the whole run's expected time, and on a CPU, where that is over an hour,
    /// a shorter recipe that fits. Returns the estimate per width.
    /// </summary>
    static Dictionary<double, double> PrintEstimate(TrainOptions o, IReadOnlyList<double> runWidths, Device device, ILogger log,
        Func<ShorterRecipe, string>? describe)
    {
        var (trainImages, valImages, classes) = ImageCounts(o);
        var shape = new RunShape(trainImages, valImages, o.BatchSize, o.Epochs, o.ImageSize);
        // The probe times the largest batch the run can form: a --batch-size above the dataset never allocates more.
        int probeBatch = Math.Max(2, Math.Min(o.BatchSize, trainImages));
        var costs = runWidths.Distinct().Select(w => Estimate.Probe(MobileNetV2Spec.Build(o.Arch, w, Math.Max(2, classes), o.Dropout),
            device, probeBatch, o.ImageSize, o.Precision, o.MemoryFormat)).ToList(); // each width timed once, whatever its seeds
        var runs = runWidths.Select(w => costs.First(c => c.Width == w)).ToList();
        foreach (var line in Estimate.Lines(shape, runs, device.ToString())) log.Line(line);
        if (probeBatch < o.BatchSize)
            log.Line($"  (timed at batch {probeBatch}: {trainImages} train images are fewer than the batch size {o.BatchSize}, so no batch is larger)");
        double total = Estimate.WholeSeconds(shape, runs);
        if (device.type == TorchSharp.DeviceType.CPU && Estimate.Shorter(total, 3600, o.ImageSize, o.Epochs) is var (size, epochs))
        {
            var recipe = new ShorterRecipe(size, epochs,
                o.Dataset == DatasetKind.Imagenette && o.Size == ImagenetteSize.Full ? ImagenetteSize.Px160 : null); // a 99 MB download instead of 1.5 GB
            log.Line($"that is long for a CPU; a shorter recipe that fits in about an hour here: {describe?.Invoke(recipe) ?? recipe.ToString()}");
        }
        return costs.ToDictionary(c => c.Width, c => Estimate.WholeSeconds(shape, [c]));
    }
}

/// <summary>A recipe that fits in about an hour on this CPU: a smaller image size, fewer epochs, the 160 px Imagenette where the full one was asked.</summary>
public sealed record ShorterRecipe(int ImageSize, int Epochs, ImagenetteSize? Size);
