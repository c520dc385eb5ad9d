using Keras.MobileNet.Backend;
using Keras.MobileNet.Model;

namespace Keras.MobileNet.Runs;

/// <summary>Reading run folders back: what evaluate, predict, plot and a sweep's merge know of a run.</summary>
public static class RunReader
{
    public const string Card = "model.json", State = "trainer_state.json", Summary = "summary.json", History = "history.csv",
        Confusion = "confusion.json", Options = "options.json", Best = "best.safetensors";

    /// <summary>The figures and report a drawing writes into a run's (or a comparison's) folder.</summary>
    public const string CurvesFigure = "curves.png", CostFigure = "accuracy_vs_cost.png", LrFigure = "lr.png", ConfusionFigure = "confusion.png",
        ReportFile = "report.md";

    public static readonly IReadOnlyList<string> Drawn = [CurvesFigure, CostFigure, LrFigure, ConfusionFigure, ReportFile];

    /// <summary>
    /// A finished run in this folder (its state says finished and its summary is written: all epochs, or an early
    /// stop), or null: what a sweep skips, and what its merge waits for.
    /// </summary>
    public static RunResult? Completed(string folder)
    {
        string state = Path.Combine(folder, State), summary = Path.Combine(folder, Summary);
        if (!File.Exists(state) || !File.Exists(summary)) return null;
        var s = Files.ReadJson<TrainerState>(state, t => t.Problem());
        if (!s.Finished) return null;
        var sum = Files.ReadJson<RunSummary>(summary, r => r.Problem());
        return new RunResult(folder, sum, HistoryRow.ReadCsv(Path.Combine(folder, History)));
    }

    /// <summary>The model card of a run folder, or of the folder holding a checkpoint file.</summary>
    public static (ModelCard Card, string Weights) Find(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, Best) : path;
        string cardPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, Card);
        if (!File.Exists(file)) throw new UserError($"checkpoint {file} does not exist");
        if (!File.Exists(cardPath)) throw new UserError($"{cardPath} is missing: it says how to rebuild the network of {file}");
        return (Files.ReadJson<ModelCard>(cardPath, c => c.Problem()), file);
    }

    /// <summary>The options a run was trained with (its options.json), if the checkpoint sits in a run folder.</summary>
    public static Config.TrainOptions? OptionsOf(string checkpoint)
    {
        string dir = Directory.Exists(checkpoint) ? checkpoint : Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        string opts = Path.Combine(dir, Options);
        return File.Exists(opts) ? Files.ReadJson<Config.TrainOptions>(opts, t => t.Data is null ? "data is missing" : null) : null;
    }

    /// <summary>Rebuilds the network of a run folder (or of a .safetensors next to its model.json) and loads its weights.</summary>
    public static (ModelCard Card, MobileNetV2 Network) LoadCheckpoint(string path)
    {
        var (card, file) = Find(path);
        var net = Factories.MobileNetV2(card.Spec());
        Checkpoints.Load(net, file);
        return (card, net);
    }
}

/// <summary>What the figures need from one run folder.</summary>
public sealed record RunData(string Folder, string Label, RunSummary? Summary, IReadOnlyList<HistoryRow> History, ConfusionData? Confusion)
{
    public double Width => Summary?.Width ?? double.NaN;

    /// <summary>Reads a run folder written by the Train program; anything else is a clear error.</summary>
    public static RunData Load(string folder)
    {
        string csv = Path.Combine(folder, RunReader.History);
        if (!Directory.Exists(folder)) throw new UserError($"{folder} does not exist");
        if (!File.Exists(csv)) throw new UserError($"{folder} is not a run folder (no history.csv)");
        List<HistoryRow> rows;
        try { rows = HistoryRow.ReadCsv(csv); }
        catch (InvalidDataException e) { throw new UserError(e.Message); }
        string summaryPath = Path.Combine(folder, RunReader.Summary);
        var summary = File.Exists(summaryPath) ? Files.ReadJson<RunSummary>(summaryPath, s => s.Problem()) : null;
        string confPath = Path.Combine(folder, RunReader.Confusion);
        var confusion = File.Exists(confPath) ? Files.ReadJson<ConfusionData>(confPath, c => c.Problem()) : null;
        string label = summary is not null ? $"Width-{summary.Width:0.##}" : Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'));
        return new RunData(folder, label, summary, rows, confusion);
    }
}
