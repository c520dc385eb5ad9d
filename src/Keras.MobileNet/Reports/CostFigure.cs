using ScottPlot;

using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Reports;

/// <summary>
/// accuracy_vs_cost.png: best val accuracy against parameters, against MACs, and (when every run measured it) against
/// the measured CPU latency, one point per width.
/// </summary>
public static class CostFigure
{
    /// <summary>The points that no cheaper point beats: sorted by cost, each more accurate than all before it.</summary>
    public static List<(double Cost, double Accuracy, string Label)> Frontier(IEnumerable<(double Cost, double Accuracy, string Label)> points)
    {
        var front = new List<(double, double, string)>();
        double best = double.NegativeInfinity;
        foreach (var p in points.Where(p => double.IsFinite(p.Accuracy)).OrderBy(p => p.Cost).ThenByDescending(p => p.Accuracy))
            if (p.Accuracy > best) { front.Add(p); best = p.Accuracy; }
        return front;
    }

    public static void Draw(IReadOnlyList<RunData> runs, string path, FigureSize size)
    {
        var groups = RunGroup.Of(runs);
        var mp = Plot(groups, size);
        int panels = Panels(groups);
        Figures.Save(path, tmp => mp.SavePng(tmp, size.Width * panels / 2 + size.Width / 4, size.Height / 2 + 100));
    }

    /// <summary>Three panels when every width measured its latency on one machine, else two (parameters and MACs).</summary>
    public static int Panels(IReadOnlyList<RunGroup> groups) => LatencyMachine(groups) is null ? 2 : 3;

    /// <summary>The machine every run's latency was measured on, or null (one missing, or several machines).</summary>
    public static string? LatencyMachine(IReadOnlyList<RunGroup> groups)
    {
        var all = groups.SelectMany(g => g.Runs).Select(r => r.Summary?.Latency).ToList();
        if (all.Count == 0 || all.Any(l => l is null)) return null;
        var machines = all.Select(l => l!.Machine).Distinct().ToList();
        return machines.Count == 1 ? machines[0] : null;
    }

    /// <summary>The mean of each width's seeds with error bars of one standard deviation; the frontier on the means.</summary>
    public static Multiplot Plot(IReadOnlyList<RunGroup> groups, FigureSize size)
    {
        Figures.EnsureFont();
        var withAccuracy = groups.Where(g => g.BestAccuracy is not null).ToList();
        int panels = Panels(groups);
        string? machine = LatencyMachine(groups);
        bool int8 = machine is not null && withAccuracy.Any(g => g.Int8Latency is not null);
        var mp = new Multiplot();
        mp.AddPlots(panels);
        // Half a panel more for the legend, given to the last panel, which draws it on its right: the panels' plot
        // areas stay alike (the latency panel was squeezed to two thirds of the others).
        var layout = new ScottPlot.MultiplotLayouts.CustomGrid();
        for (int i = 0; i < panels; i++) layout.Set(mp.GetPlot(i), new GridCell(0, 2 * i, 1, 2 * panels + 1, 1, i == panels - 1 ? 3 : 2));
        mp.Layout = layout;
        for (int panel = 0; panel < panels; panel++)
        {
            var plot = mp.GetPlot(panel);
            plot.ScaleFactor = (float)size.Scale;
            var pts = withAccuracy.Select(g => (Cost: panel switch { 0 => g.First.Summary!.Params / 1e6, 1 => g.First.Summary!.Macs / 1e6, _ => g.Latency!.Value },
                Stat: g.BestAccuracy!, g.Label)).ToList();
            var front = Frontier(pts.Select(p => (p.Cost, p.Stat.Mean * 100, p.Label)));
            if (front.Count > 1)
            {
                var line = plot.Add.ScatterLine(front.Select(p => p.Cost).ToArray(), front.Select(p => p.Accuracy).ToArray());
                line.LinePattern = LinePattern.Dashed;
                line.Color = Colors.Gray;
                line.LegendText = "efficient frontier";
            }
            bool seeds = pts.Any(p => p.Stat.N > 1);
            // Each point is named in the legend, not beside it: text next to points overlapped other points and labels.
            for (int i = 0; i < pts.Count; i++)
            {
                var (cost, stat, label) = pts[i];
                var color = Figures.ColorOf(i);
                if (stat.N > 1)
                {
                    var bar = plot.Add.ErrorBar([cost], [stat.Mean * 100], [stat.Sd * 100]);
                    bar.Color = color;
                    bar.LineWidth = 2;
                }
                var marker = plot.Add.Marker(cost, stat.Mean * 100, MarkerShape.FilledCircle, 12, color);
                marker.LegendText = stat.N > 1 ? $"{label}: {stat.Mean * 100:F1} ± {stat.Sd * 100:F1}%" : $"{label}: {stat.Mean * 100:F1}%";
                if (panel == 2 && int8 && withAccuracy[i].Int8Latency is double q)
                {
                    // The same width's int8 model: an open marker at its latency, joined to the float32 point.
                    var join = plot.Add.Line(cost, stat.Mean * 100, q, stat.Mean * 100);
                    join.Color = color.WithAlpha(0.5);
                    join.LinePattern = LinePattern.Dotted;
                    plot.Add.Marker(q, stat.Mean * 100, MarkerShape.OpenCircle, 12, color);
                }
            }
            if (panel == 2 && int8 && pts.Count > 0)
                plot.Add.Marker(double.NaN, double.NaN, MarkerShape.OpenCircle, 12, Colors.Gray).LegendText = "open: int8 model (accuracy of float32)";
            // One legend, outside the last panel: inside, it hid whichever point sat in its corner.
            if (pts.Count > 0 && panel == panels - 1) plot.ShowLegend(Edge.Right);
            else plot.HideLegend();
            if (pts.Count == 0) plot.Add.Annotation("no run has a validation accuracy", Alignment.MiddleCenter);
            plot.Title(panel switch { 0 => "Best val accuracy vs parameters", 1 => "Best val accuracy vs MACs", _ => "Best val accuracy vs CPU latency" }
                + (seeds ? " (mean ± sd)" : ""));
            plot.XLabel(panel switch
            {
                0 => "parameters (millions)",
                1 => "MACs per image (millions)",
                _ => $"ms per image at batch 1, ONNX Runtime\nmeasured on {machine}",
            });
            plot.YLabel("best val accuracy (%)");
            plot.Axes.AutoScale();
            plot.Axes.Margins(0.1, 0.15);
            Figures.CapAt(plot, 100);
        }
        return mp;
    }
}
