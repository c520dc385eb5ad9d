using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Reports;

/// <summary>Mean, sample standard deviation (n - 1; 0 for one value), min and max of some values.</summary>
public sealed record Spread(double Mean, double Sd, double Min, double Max, int N)
{
    public static Spread? Of(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return null;
        double mean = v.Average();
        double sd = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
        return new Spread(mean, sd, v.Min(), v.Max(), v.Length);
    }
}

/// <summary>
/// The runs of one (arch, width): the seeds of a sweep cell, drawn as one line (their mean) with a band of one
/// standard deviation. A run without a summary is a group of its own.
/// </summary>
public sealed record RunGroup(string Label, IReadOnlyList<RunData> Runs)
{
    public RunData First => Runs[0];
    public double Width => First.Width;
    public bool Seeds => Runs.Count > 1;

    /// <summary>Groups runs by (arch, width), widest first; a group's label says how many seeds it holds.</summary>
    public static List<RunGroup> Of(IEnumerable<RunData> runs) =>
        runs.GroupBy(r => r.Summary is { } s ? $"{s.Arch}|{s.Width:R}" : "folder|" + r.Folder)
            .Select(g => g.ToList())
            .Select(g => new RunGroup(g.Count > 1 ? $"{g[0].Label} ({g.Count} seeds)" : g[0].Label, g))
            .OrderByDescending(g => g.Width).ToList();

    /// <summary>Per epoch: the mean and sd of a history column over the runs that have a finite value there.</summary>
    public List<(int Epoch, Spread Stat)> Curve(Func<HistoryRow, double?> get) =>
        Runs.SelectMany(r => r.History).GroupBy(h => h.Epoch).OrderBy(g => g.Key)
            .Select(g => (g.Key, Stat: Spread.Of(g.Select(h => get(h) ?? double.NaN))))
            .Where(p => p.Stat is not null).Select(p => (p.Key, p.Stat!)).ToList();

    /// <summary>The median of the group's measured CPU latencies (ms), over the runs that have one; null when none has.</summary>
    public double? Latency => Median(s => s.Latency?.MedianMs);

    /// <summary>As <see cref="Latency"/>, of the int8 model (runs trained with <c>--latency int8</c>).</summary>
    public double? Int8Latency => Median(s => s.Int8Latency?.MedianMs);

    double? Median(Func<RunSummary, double?> get)
    {
        var v = Runs.Select(r => r.Summary is { } s ? get(s) : null).OfType<double>().Order().ToList();
        return v.Count == 0 ? null : v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    /// <summary>Best val accuracy across the group's runs (those that have one).</summary>
    public Spread? BestAccuracy => Spread.Of(Runs.Select(r => r.Summary?.BestValAccuracy ?? double.NaN));
}
