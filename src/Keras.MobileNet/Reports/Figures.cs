using Keras.MobileNet.Backend;
using Keras.MobileNet.Runs;
using ScottPlot;

namespace Keras.MobileNet.Reports;

public sealed record FigureSize(int Width = 1200, int Height = 900, double Scale = 1.0);

/// <summary>The figures, drawn with ScottPlot, headless. Every function takes values and writes one PNG.</summary>
public static class Figures
{
    static readonly object FontGate = new();
    static bool fontsReady;

    /// <summary>
    /// Registers the DejaVu Sans shipped inside this library (regular and bold) and makes it the default, so text
    /// renders the same on every machine, including GPU hosts and CI machines with no fonts or display at all.
    /// </summary>
    public static string EnsureFont()
    {
        lock (FontGate)
        {
            if (fontsReady) return Fonts.Default;
            string dir = Path.Combine(Path.GetTempPath(), $"keras-mobilenet-fonts-{Environment.UserName}");
            Directory.CreateDirectory(dir);
            string Extract(string name)
            {
                string path = Path.Combine(dir, name);
                using var res = typeof(Figures).Assembly.GetManifestResourceStream($"fonts/{name}")
                    ?? throw new InvalidOperationException($"embedded font {name} is missing");
                if (File.Exists(path) && new FileInfo(path).Length == res.Length) return path;
                AtomicFile.Write(path, tmp => { using var f = File.Create(tmp); res.CopyTo(f); });
                return path;
            }
            Fonts.AddFontFile("KM Sans", Extract("DejaVuSans.ttf"));
            // Titles are bold: register the bold face under the same name, or they fall back to another family.
            Fonts.AddFontFile("KM Sans", Extract("DejaVuSans-Bold.ttf"), bold: true, italic: false);
            Fonts.Default = "KM Sans";
            fontsReady = true;
            return Fonts.Default;
        }
    }

    static readonly LinePattern[] Patterns = [LinePattern.Dashed, LinePattern.Solid, LinePattern.Dotted, LinePattern.DenselyDashed];
    internal static Color ColorOf(int i) => new ScottPlot.Palettes.Category10().GetColor(i);

    static void Save(Plot plot, string path, FigureSize size)
    {
        plot.ScaleFactor = (float)size.Scale;
        Save(path, tmp => plot.SavePng(tmp, size.Width, size.Height));
    }

    /// <summary>The temporary name keeps the .png extension for ScottPlot.</summary>
    internal static void Save(string path, Action<string> write) => AtomicFile.Write(path, write, ".tmp.png");

    /// <summary>
    /// One line per run, split at non-finite values so a run that ended in NaN stops where it was last finite
    /// (no line shooting off to infinity).
    /// </summary>
    static void AddSeries(Plot plot, IReadOnlyList<double> xs, IReadOnlyList<double?> ys, string label, int index)
    {
        bool labelled = false;
        var segX = new List<double>();
        var segY = new List<double>();
        void Flush()
        {
            if (segX.Count == 0) return;
            var line = segX.Count == 1 ? plot.Add.Scatter(segX.ToArray(), segY.ToArray()) : plot.Add.ScatterLine(segX.ToArray(), segY.ToArray());
            line.Color = ColorOf(index);
            line.LineWidth = 2;
            line.LinePattern = Patterns[index % Patterns.Length];
            line.MarkerSize = segX.Count == 1 || xs.Count <= 20 ? 5 : 0;
            if (!labelled) { line.LegendText = label; labelled = true; }
            segX.Clear();
            segY.Clear();
        }
        for (int i = 0; i < xs.Count; i++)
        {
            if (ys[i] is double y && double.IsFinite(y)) { segX.Add(xs[i]); segY.Add(y); }
            else Flush();
        }
        Flush();
    }

    static readonly (string Key, string Title, string YLabel, Func<HistoryRow, double?> Get)[] CurveFields =
    [
        ("train_loss", "Train loss", "loss", r => r.TrainLoss),
        ("val_loss", "Validation loss", "loss", r => r.ValLoss),
        ("train_accuracy", "Train accuracy", "accuracy", r => r.TrainAccuracy),
        ("val_accuracy", "Validation accuracy", "accuracy", r => r.ValAccuracy),
    ];

    /// <summary>
    /// curves.png: the notebook's 2x2 grid of train/val loss and accuracy against epoch, one line per width; the seeds of
    /// a width draw their mean with a band of one standard deviation.
    /// </summary>
    public static void Curves(IReadOnlyList<RunData> runs, string path, FigureSize size)
    {
        var mp = CurvesPlot(RunGroup.Of(runs), size);
        Save(path, tmp => mp.SavePng(tmp, size.Width, size.Height));
    }

    public static Multiplot CurvesPlot(IReadOnlyList<RunGroup> groups, FigureSize size)
    {
        EnsureFont();
        var mp = new Multiplot();
        mp.AddPlots(4);
        mp.Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2);
        for (int f = 0; f < 4; f++)
        {
            var (_, title, ylabel, get) = CurveFields[f];
            var plot = mp.GetPlot(f);
            plot.ScaleFactor = (float)size.Scale;
            for (int g = 0; g < groups.Count; g++)
            {
                if (!groups[g].Seeds)
                {
                    var h = groups[g].First.History;
                    AddSeries(plot, h.Select(r => (double)r.Epoch).ToList(), h.Select(get).ToList(), groups[g].Label, g);
                    continue;
                }
                var curve = groups[g].Curve(get);
                double[] xs = [.. curve.Select(c => (double)c.Epoch)];
                if (xs.Length > 1)
                {
                    var band = plot.Add.FillY(xs, [.. curve.Select(c => c.Stat.Mean - c.Stat.Sd)], [.. curve.Select(c => c.Stat.Mean + c.Stat.Sd)]);
                    band.FillColor = ColorOf(g).WithAlpha(0.18);
                    band.LineWidth = 0;
                }
                AddSeries(plot, xs, [.. curve.Select(c => (double?)c.Stat.Mean)], groups[g].Label, g);
            }
            plot.Title(title);
            plot.XLabel("epoch");
            plot.YLabel(ylabel);
            if (groups.All(g => g.Runs.All(r => r.History.All(h => get(h) is null))))
                plot.Add.Annotation("no data", Alignment.MiddleCenter);
            plot.Axes.AutoScale();
            plot.Axes.Margins(0.03, 0.08);
            if (ylabel == "accuracy") CapAt(plot, 1.0);
            EpochTicks(plot);
            // Outside the data area: a legend inside hides the lines of whichever corner it sits in.
            plot.ShowLegend(Edge.Right);
        }
        return mp;
    }

    /// <summary>An accuracy axis ends at 100%: the margins above the data never run past it.</summary>
    internal static void CapAt(Plot plot, double top)
    {
        var limits = plot.Axes.GetLimits();
        if (limits.Top > top) plot.Axes.SetLimitsY(limits.Bottom, top);
    }

    static void EpochTicks(Plot plot) =>
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    /// <summary>lr.png: the learning rate each epoch actually used.</summary>
    public static void LearningRate(IReadOnlyList<RunData> runs, string path, FigureSize size)
    {
        EnsureFont();
        var plot = new Plot();
        var groups = RunGroup.Of(runs); // seeds share a schedule: one line per width
        for (int g = 0; g < groups.Count; g++)
        {
            var h = groups[g].First.History;
            AddSeries(plot, h.Select(r => (double)r.Epoch).ToList(), h.Select(r => (double?)r.Lr).ToList(), groups[g].Label, g);
        }
        EpochTicks(plot);
        plot.Title("Learning rate (as applied)");
        plot.XLabel("epoch");
        plot.YLabel("learning rate");
        plot.Axes.Margins(0.03, 0.08);
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path, size);
    }

    /// <summary>confusion.png: rows = true class, normalised per row, the count in each cell.</summary>
    public static void Confusion(ConfusionData c, string path, FigureSize size, string title = "Validation confusion matrix")
    {
        EnsureFont();
        int n = c.Classes.Length;
        var norm = c.Normalized();
        var data = new double[n, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) data[i, j] = norm[i][j];
        var plot = new Plot();
        var hm = plot.Add.Heatmap(data);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        // Unit cells with their lower-left corners on integers: cell (row i, column j) spans x in [j, j+1].
        hm.CellWidth = 1;
        hm.CellHeight = 1;
        hm.CellAlignment = Alignment.LowerLeft;
        hm.Position = null;
        hm.Extent = null;
        hm.ManualRange = new ScottPlot.Range(0, 1);
        int font = n <= 10 ? 13 : 9;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                // Row i is drawn at the top when i = 0: the heatmap puts data[0, *] in its top row.
                var t = plot.Add.Text($"{c.Counts[i][j]}\n{norm[i][j]:P0}", j + 0.5, n - i - 0.5);
                t.LabelFontSize = font;
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontColor = norm[i][j] > 0.6 ? Colors.Black : Colors.White;
            }
        var ticks = Enumerable.Range(0, n).Select(i => i + 0.5).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, c.Classes);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.Select(t => n - t).ToArray(), c.Classes);
        plot.Axes.Bottom.TickLabelStyle.Rotation = -35;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 120;
        plot.Axes.Left.MinimumSize = 120;
        plot.Add.ColorBar(hm);
        plot.Axes.SetLimits(0, n, 0, n);
        plot.Title(title);
        plot.XLabel("predicted class");
        plot.YLabel("true class");
        Save(plot, path, size with { Width = Math.Max(size.Width, 900), Height = Math.Max(size.Height, 800) });
    }
}
