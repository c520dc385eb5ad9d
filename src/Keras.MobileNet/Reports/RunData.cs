using Keras.MobileNet.Backend;
using Keras.MobileNet.Training;

namespace Keras.MobileNet.Reports;

/// <summary>The val confusion matrix of a run's best checkpoint (confusion.json), as counts.</summary>
public sealed record ConfusionData(string[] Classes, long[][] Counts)
{
    /// <summary>Each row divided by its total (rows of classes with no samples stay 0).</summary>
    public double[][] Normalized() => Counts.Select(r =>
    {
        double s = r.Sum();
        return r.Select(c => s == 0 ? 0 : c / s).ToArray();
    }).ToArray();

    /// <summary>What is wrong with confusion data read from a file, or null.</summary>
    public string? Problem() =>
        Classes is null || Counts is null ? "classes and counts are both needed"
        : Counts.Length != Classes.Length || Counts.Any(r => r is null || r.Length != Classes.Length)
            ? $"counts is not a {Classes.Length}x{Classes.Length} matrix (one row and column per class)"
        : Counts.Any(r => r.Any(c => c < 0)) ? "counts has a negative count"
        : null;
}

/// <summary>What the figures need from one run folder.</summary>
public sealed record RunData(string Folder, string Label, RunSummary? Summary, IReadOnlyList<HistoryRow> History, ConfusionData? Confusion)
{
    public double Width => Summary?.Width ?? double.NaN;

    /// <summary>Reads a run folder written by the Train program; anything else is a clear error.</summary>
    public static RunData Load(string folder)
    {
        string csv = Path.Combine(folder, "history.csv");
        if (!Directory.Exists(folder)) throw new UserError($"{folder} does not exist");
        if (!File.Exists(csv)) throw new UserError($"{folder} is not a run folder (no history.csv)");
        List<HistoryRow> rows;
        try { rows = HistoryRow.ReadCsv(csv); }
        catch (InvalidDataException e) { throw new UserError(e.Message); }
        string summaryPath = Path.Combine(folder, "summary.json");
        var summary = File.Exists(summaryPath) ? Files.ReadJson<RunSummary>(summaryPath, s => s.Problem()) : null;
        string confPath = Path.Combine(folder, "confusion.json");
        var confusion = File.Exists(confPath) ? Files.ReadJson<ConfusionData>(confPath, c => c.Problem()) : null;
        string label = summary is not null ? $"Width-{summary.Width:0.##}" : Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'));
        return new RunData(folder, label, summary, rows, confusion);
    }
}
