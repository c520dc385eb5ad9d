using ScottPlot;

using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Reports;

/// <summary>accuracy_vs_cost.png: best val accuracy against parameters and against MACs, one point per width.</summary>
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
        var mp = Plot(RunGroup.Of(runs), size);
        Figures.Save(path, tmp => mp.SavePng(tmp, size.Width, size.Height / 2 + 100));
    }

    /// <summary>The mean of each width's seeds with error bars of one standard deviation; the frontier on the means.</summary>
    public static Multiplot Plot(IReadOnlyList<RunGroup> groups, FigureSize size)
    {
        Figures.EnsureFont();
        var withAccuracy = groups.Where(g => g.BestAccuracy is not null).ToList();
        var mp = new Multiplot();
        mp.AddPlots(2);
        mp.Layout = new ScottPlot.MultiplotLayouts.Grid(1, 2);
        for (int panel = 0; panel < 2; panel++)
        {
            var plot = mp.GetPlot(panel);
            plot.ScaleFactor = (float)size.Scale;
            var pts = withAccuracy.Select(g => (Cost: (panel == 0 ? g.First.Summary!.Params : g.First.Summary!.Macs) / 1e6,
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
            }
            if (pts.Count > 0) plot.ShowLegend(Alignment.LowerRight);
            if (pts.Count == 0) plot.Add.Annotation("no run has a validation accuracy", Alignment.MiddleCenter);
            plot.Title((panel == 0 ? "Best val accuracy vs parameters" : "Best val accuracy vs MACs") + (seeds ? " (mean ± sd)" : ""));
            plot.XLabel(panel == 0 ? "parameters (millions)" : "MACs per image (millions)");
            plot.YLabel("best val accuracy (%)");
            plot.Axes.AutoScale();
            plot.Axes.Margins(0.1, 0.15);
            Figures.CapAt(plot, 100);
        }
        return mp;
    }
}
