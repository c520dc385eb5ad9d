using System.Globalization;
using System.Text;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Reports;

/// <summary>Draws every figure for one run or a comparison, and report.md beside them.</summary>
public static class Report
{
    public static IReadOnlyList<string> Draw(IReadOnlyList<RunData> runs, string outDir, FigureSize? size = null)
    {
        if (runs.Count == 0) throw new ArgumentException("no runs to plot");
        size ??= new FigureSize();
        Directory.CreateDirectory(outDir);
        RemoveStaleTemps(outDir);
        var written = new List<string>();
        string P(string name) { var p = Path.Combine(outDir, name); written.Add(p); return p; }
        var ordered = runs.OrderByDescending(r => r.Width).ToList();
        Figures.Curves(ordered, P(RunReader.CurvesFigure), size);
        CostFigure.Draw(ordered, P(RunReader.CostFigure), size);
        Figures.LearningRate(ordered, P(RunReader.LrFigure), size);
        // A confusion figure of thousands of classes is gigabytes of pixels and unreadable: confusion.json keeps the counts.
        if (runs.Count == 1 && runs[0].Confusion is { } c && c.Classes.Length <= MaxConfusionClasses) Figures.Confusion(c, P(RunReader.ConfusionFigure), size);
        Files.WriteAtomic(P(RunReader.ReportFile), Markdown(ordered, outDir, written));
        return written;
    }

    /// <summary>The most classes confusion.png is drawn for.</summary>
    public const int MaxConfusionClasses = 200;

    /// <summary>Temp files of the names a drawing writes that a killed drawing left (its process is gone); no other file.</summary>
    static void RemoveStaleTemps(string outDir)
    {
        foreach (var f in Directory.GetFiles(outDir))
            if (AtomicFile.TempOf(Path.GetFileName(f)) is var (target, pid) && RunReader.Drawn.Contains(target) && !Alive(pid))
                File.Delete(f);
    }

    static bool Alive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    static string Pct(double? v) => v is double d ? (d * 100).ToString("F2", CultureInfo.InvariantCulture) + "%" : "-";
    static string MeanSd(Spread? s) => s is null ? "-"
        : $"{(s.Mean * 100).ToString("F2", CultureInfo.InvariantCulture)} ± {(s.Sd * 100).ToString("F2", CultureInfo.InvariantCulture)}%";
    static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    static string Ms(double? v) => v is double d ? d.ToString("F2", CultureInfo.InvariantCulture) + " ms" : "-";

    public static string Markdown(IReadOnlyList<RunData> runs, string outDir, IReadOnlyList<string> images)
    {
        var sb = new StringBuilder("# MobileNetV2 width comparison\n\n");
        var groups = RunGroup.Of(runs);
        bool int8 = runs.Any(r => r.Summary?.Int8Latency is not null);
        string int8Head = int8 ? " int8 latency |" : "", int8Rule = int8 ? " ---: |" : "";
        if (groups.Any(g => g.Seeds))
        {
            // The width effect against the luck of one seed: best val accuracy across each width's seeds.
            sb.Append($"| arch | width | seeds | best val acc (mean ± sd) | min | max | final val acc (mean ± sd) | params | MACs | CPU latency |{int8Head}\n");
            sb.Append($"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{int8Rule}\n");
            foreach (var g in groups)
            {
                var s = g.First.Summary;
                var best = g.BestAccuracy;
                var final = Spread.Of(g.Runs.Select(r => r.History.LastOrDefault()?.ValAccuracy ?? double.NaN));
                sb.Append($"| {(s is null ? "-" : Files.Word(s.Arch))} | {g.Width.ToString(CultureInfo.InvariantCulture)} | {g.Runs.Count} | {MeanSd(best)} | " +
                          $"{Pct(best?.Min)} | {Pct(best?.Max)} | {MeanSd(final)} | {(s is null ? "-" : N(s.Params))} | {(s is null ? "-" : N(s.Macs))} | " +
                          $"{Ms(g.Latency)} |" + (int8 ? $" {Ms(g.Int8Latency)} |" : "") + "\n");
            }
            sb.Append("\nsd: sample standard deviation (n - 1) across seeds. Every run:\n\n");
        }
        sb.Append($"| run | arch | width | seed | params | MACs | CPU latency |{int8Head} best val acc | final val acc | best epoch | epochs | train time | images/s | device |\n");
        sb.Append($"| --- | --- | ---: | ---: | ---: | ---: | ---: |{int8Rule} ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
        foreach (var r in runs)
        {
            var s = r.Summary;
            string name = Path.GetRelativePath(outDir, r.Folder).Replace('\\', '/');
            sb.Append($"| {name} | {(s is null ? "-" : Files.Word(s.Arch))} | {r.Width.ToString(CultureInfo.InvariantCulture)} | {(s is null ? "-" : s.Seed)} | {(s is null ? "-" : N(s.Params))} | " +
                      $"{(s is null ? "-" : N(s.Macs))} | {Ms(s?.Latency?.MedianMs)} |{(int8 ? $" {Ms(s?.Int8Latency?.MedianMs)} |" : "")} {Pct(s?.BestValAccuracy)} | {Pct(r.History.LastOrDefault()?.ValAccuracy)} | " +
                      $"{(s is null || s.BestEpoch < 1 ? "-" : s.BestEpoch)} | {r.History.Count} | " +
                      $"{(s is null ? "-" : s.TrainSeconds.ToString("F0", CultureInfo.InvariantCulture) + " s")} | " +
                      $"{(s is null ? "-" : s.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture))} | {s?.Device ?? "-"} |\n");
        }
        var machines = runs.Select(r => r.Summary?.Latency).OfType<MeasuredLatency>().Select(l => l.Machine).Distinct().ToList();
        if (machines.Count > 0)
            sb.Append($"\nCPU latency: median of single-image forward passes in ONNX Runtime (fp32, BatchNorm folded) at each run's image size, " +
                      $"measured at the end of each run on {string.Join("; ", machines)}" +
                      (machines.Count > 1 ? " (different machines: compare latencies of one machine only)" : "") + "." +
                      (int8 ? " int8 latency: the same for the int8 model `export --int8` writes (per-channel weights, activations calibrated on " +
                              "256 of the run's val images; runs trained with `--latency int8`)." : "") + "\n");
        foreach (var r in runs.Where(r => r.Summary?.StopReason is not null))
            sb.Append($"\n{r.Label} stopped early: {r.Summary!.StopReason}\n");
        sb.Append('\n');
        foreach (var img in images.Where(i => i.EndsWith(".png")))
        {
            string file = Path.GetFileName(img);
            sb.Append($"![{Path.GetFileNameWithoutExtension(file)}]({file})\n\n");
        }
        return sb.ToString();
    }
}
