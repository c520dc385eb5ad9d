using ScottPlot;

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

    /// <summary>
    /// Where each label goes: above its point (true) or below it. A label goes below when the point is in the top
    /// eighth of the axis or when the label of a point at nearly the same height (within <paramref name="gap"/>)
    /// already sits above, so labels of points at one height never overlap.
    /// </summary>
    public static bool[] LabelsAbove(IReadOnlyList<(double X, double Y)> points, double yMin, double yMax, double gap)
    {
        var above = new bool[points.Count];
        var placed = new List<(double X, double Y, bool Above)>();
        foreach (int i in Enumerable.Range(0, points.Count).OrderByDescending(i => points[i].Y))
        {
            bool nearTop = points[i].Y > yMax - (yMax - yMin) / 8;
            bool crowded = placed.Any(p => p.Above && Math.Abs(p.Y - points[i].Y) < gap);
            above[i] = !nearTop && !crowded;
            placed.Add((points[i].X, points[i].Y, above[i]));
        }
        return above;
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
            }
            bool seeds = pts.Any(p => p.Stat.N > 1);
            double lo = pts.Count == 0 ? 0 : pts.Min(p => (p.Stat.Mean - p.Stat.Sd) * 100), hi = pts.Count == 0 ? 100 : pts.Max(p => (p.Stat.Mean + p.Stat.Sd) * 100);
            var above = LabelsAbove(pts.Select(p => (p.Cost, p.Stat.Mean * 100)).ToList(), lo, hi, gap: Math.Max(hi - lo, 1) * 0.08);
            double maxCost = pts.Count == 0 ? 1 : pts.Max(p => p.Cost);
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
                plot.Add.Marker(cost, stat.Mean * 100, MarkerShape.FilledCircle, 12, color);
                string text = stat.N > 1 ? $"{label}  {stat.Mean * 100:F1} ± {stat.Sd * 100:F1}%" : $"{label}  {stat.Mean * 100:F1}%";
                var t = plot.Add.Text(text, cost, stat.Mean * 100);
                t.LabelFontSize = 14;
                // Labels of points in the right half go to their left, so none runs off the panel.
                bool right = cost > 0.6 * maxCost;
                t.LabelAlignment = (right, above[i]) switch
                {
                    (true, true) => Alignment.LowerRight, (true, false) => Alignment.UpperRight,
                    (false, true) => Alignment.LowerLeft, (false, false) => Alignment.UpperLeft,
                };
                t.OffsetX = right ? -8 : 8;
                t.OffsetY = above[i] ? -6 : 6;
            }
            if (pts.Count == 0) plot.Add.Annotation("no run has a validation accuracy", Alignment.MiddleCenter);
            plot.Title((panel == 0 ? "Best val accuracy vs parameters" : "Best val accuracy vs MACs") +
                       (seeds ? " (mean ± sd over seeds)" : "") + (front.Count > 1 ? (seeds ? ", dashed: frontier" : " (dashed: efficient frontier)") : ""));
            plot.XLabel(panel == 0 ? "parameters (millions)" : "MACs per image (millions)");
            plot.YLabel("best val accuracy (%)");
            plot.Axes.AutoScale();
            plot.Axes.Margins(0.15, 0.2); // room for the point labels
            Figures.CapAt(plot, 100);
        }
        return mp;
    }
}
