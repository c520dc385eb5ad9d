using Keras.MobileNet.Reports;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Keras.MobileNet.Tests;

public class PlotTests
{
    string dir = "";
    [SetUp] public void Make() => dir = Directory.CreateTempSubdirectory("km-plot").FullName;
    [TearDown] public void Remove() => Directory.Delete(dir, true);

    static RunSummary Summary(double width, long parameters, long macs, double? best, int epochs, string? stop = null) =>
        new(Preset.Paper, width, 10, 224, parameters, 0, macs, best, 1, best, epochs, 10, 100, "cpu", 0, stop, new TrainOptions());

    static List<HistoryRow> Rows(int n, double scale, bool val = true, int nanFrom = int.MaxValue) =>
        Enumerable.Range(1, n).Select(e =>
        {
            double loss = e >= nanFrom ? double.NaN : 2.0 / (1 + scale * e);
            return new HistoryRow(e, loss, 1 - loss / 2.5, val ? loss * 1.1 : null, val ? 1 - loss / 2.4 : null, val ? 0.99 : null,
                1e-3 * (1 + Math.Cos(Math.PI * (e - 1) / n)) / 2, 1);
        }).ToList();

    /// <summary>Fixed histories with the awkward cases: different lengths, one epoch, NaN at the end, no val columns.</summary>
    List<RunData> AwkwardRuns() =>
    [
        new(dir, "Width-1", Summary(1.0, 2_236_682, 299_507_072, 0.91, 10), Rows(10, 0.5), null),
        new(dir, "Width-0.75", Summary(0.75, 1_368_234, 207_802_592, 0.89, 4), Rows(4, 0.4), null),       // early-stopped
        new(dir, "Width-0.5", Summary(0.5, 700_490, 95_864_640, null, 1), Rows(1, 0.3), null),            // a single epoch
        new(dir, "Width-0.35", Summary(0.35, 400_000, 60_000_000, 0.5, 6, "loss became NaN"), Rows(6, 0.2, nanFrom: 5), null),
        new(dir, "Width-0.25", Summary(0.25, 250_922, 30_000_000, null, 5), Rows(5, 0.1, val: false), null), // no val columns
    ];

    static Image<Rgb24> Check(string path, int width, int height)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "PNG signature");
        var img = Image.Load<Rgb24>(bytes);
        Assert.That((img.Width, img.Height), Is.EqualTo((width, height)));
        Assert.That(Variance(img, 0, 0, img.Width, img.Height), Is.GreaterThan(100), "not blank");
        return img;
    }

    static double Variance(Image<Rgb24> img, int x0, int y0, int w, int h)
    {
        double sum = 0, sq = 0;
        int n = 0;
        for (int y = y0; y < y0 + h; y++)
            for (int x = x0; x < x0 + w; x++)
            {
                var p = img[x, y];
                double v = (p.R + p.G + p.B) / 3.0;
                sum += v; sq += v * v; n++;
            }
        return sq / n - (sum / n) * (sum / n);
    }

    [Test]
    public void Curves_render_awkward_histories_with_titles_and_legends()
    {
        string path = Path.Combine(dir, "curves.png");
        Figures.Curves(AwkwardRuns(), path, new FigureSize(1000, 800));
        using var img = Check(path, 1000, 800);
        // Title strip of each of the four panels is not uniform: text was drawn there.
        foreach (var (x, y) in new[] { (100, 2), (600, 2), (100, 402), (600, 402) })
            Assert.That(Variance(img, x, y, 300, 22), Is.GreaterThan(50), $"title near ({x},{y})");
        // Legends sit to the right of each panel's data area.
        Assert.That(Variance(img, 390, 150, 100, 100), Is.GreaterThan(50), "legend of the first panel");
    }

    [Test]
    public void Accuracy_vs_cost_lr_and_report_render()
    {
        var runs = AwkwardRuns();
        var written = Report.Draw(runs, dir, new FigureSize(900, 700));
        Assert.That(written.Select(Path.GetFileName), Is.EquivalentTo(new[] { "curves.png", "accuracy_vs_cost.png", "lr.png", "report.md" }));
        using (Check(Path.Combine(dir, "lr.png"), 900, 700)) { }
        using (Check(Path.Combine(dir, "accuracy_vs_cost.png"), 1125, 450)) { }
        string md = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(md, Does.Contain("| paper | 1 | 0 | 2,236,682 | 299,507,072 | - | 91.00% |"), "no latency measured: a dash");
        Assert.That(md, Does.Not.Contain("CPU latency: median"));
        Assert.That(md, Does.Contain("![curves](curves.png)"));
        Assert.That(md, Does.Contain("stopped early: loss became NaN"));
    }

    [Test]
    public void Measured_latency_adds_a_third_panel_and_a_report_column_naming_the_machine()
    {
        static MeasuredLatency L(double ms, string cpu = "Test CPU 9000") => new(ms, ms * 1.1, 1, 224, "onnxruntime-cpu-fp32", cpu, 2, 30);
        var runs = AwkwardRuns().Select((r, i) => r with { Summary = r.Summary! with { Latency = L(10.0 - i) } }).ToList();
        var size = new FigureSize(900, 700);
        Report.Draw(runs, dir, size);
        using (var img = Check(Path.Combine(dir, "accuracy_vs_cost.png"), 1575, 450))
            Assert.That(Variance(img, 950, 60, 350, 300), Is.GreaterThan(50), "the third panel has content");
        string md = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.That(md, Does.Contain("| paper | 1 | 0 | 2,236,682 | 299,507,072 | 10.00 ms | 91.00% |"));
        Assert.That(md, Does.Contain("measured at the end of each run on Test CPU 9000, 2 threads."));
        Assert.That(CostFigure.LatencyMachine(RunGroup.Of(runs)), Is.EqualTo("Test CPU 9000, 2 threads"));

        // --latency int8: an int8 column, and in the latency panel an open marker per width at its int8 latency.
        var int8 = runs.Select((r, i) => r with { Summary = r.Summary! with { Int8Latency = L(6.0 - i) } }).ToList();
        string md8 = Report.Markdown(int8, dir, []);
        Assert.That(md8, Does.Contain("| paper | 1 | 0 | 2,236,682 | 299,507,072 | 10.00 ms | 6.00 ms | 91.00% |"));
        Assert.That(md8, Does.Contain("| CPU latency | int8 latency | best val acc |"));
        Assert.That(Report.Markdown(runs, dir, []), Does.Not.Contain("int8"), "no int8 measured: no column");
        var groups = RunGroup.Of(int8);
        var open = ScottPlot.IMultiplotExtensions.GetPlot(CostFigure.Plot(groups, size), 2).GetPlottables<ScottPlot.Plottables.Marker>()
            .Where(m => m.MarkerShape == ScottPlot.MarkerShape.OpenCircle && double.IsFinite(m.Location.X)).Select(m => m.Location.X).Order();
        Assert.That(open, Is.EqualTo(groups.Where(g => g.BestAccuracy is not null).Select(g => g.Int8Latency!.Value).Order()));

        // One run without a measurement, or runs measured on two machines: no latency panel (they do not compare).
        var missing = runs.Select((r, i) => i == 2 ? r with { Summary = r.Summary! with { Latency = null } } : r).ToList();
        var mixed = runs.Select((r, i) => i == 2 ? r with { Summary = r.Summary! with { Latency = L(3, "Other CPU") } } : r).ToList();
        Assert.That((CostFigure.Panels(RunGroup.Of(missing)), CostFigure.Panels(RunGroup.Of(mixed))), Is.EqualTo((2, 2)));
        Report.Draw(mixed, dir, size);
        Assert.That(File.ReadAllText(Path.Combine(dir, "report.md")), Does.Contain("(different machines: compare latencies of one machine only)"));
        using (Check(Path.Combine(dir, "accuracy_vs_cost.png"), 1125, 450)) { }
    }

    [Test]
    public void Frontier_keeps_only_runs_no_cheaper_run_beats()
    {
        var f = CostFigure.Frontier([(2.2, 91, "a"), (1.4, 89, "b"), (0.7, 92, "c"), (0.25, 83, "d"), (0.5, double.NaN, "e")]);
        Assert.That(f.Select(p => p.Label), Is.EqualTo(new[] { "d", "c" }));
    }

    [Test]
    public void Confusion_matrix_rows_sum_to_one_and_render_with_names()
    {
        var c = new ConfusionData(["tench", "English springer", "cassette player"], [[8, 1, 1], [0, 10, 0], [0, 0, 0]]);
        var norm = c.Normalized();
        Assert.That(norm[0].Sum(), Is.EqualTo(1).Within(1e-12));
        Assert.That(norm[1].Sum(), Is.EqualTo(1).Within(1e-12));
        Assert.That(norm[2].Sum(), Is.Zero, "a class with no samples stays empty");
        string path = Path.Combine(dir, "confusion.png");
        Figures.Confusion(c, path, new FigureSize(900, 800));
        using var img = Check(path, 900, 800);
        Assert.That(Variance(img, 0, 0, 120, 800), Is.GreaterThan(50), "class names on the left axis");
    }

    [Test]
    public void Not_a_run_folder_is_a_clear_error()
    {
        Assert.That(() => RunData.Load(dir), Throws.InstanceOf<UserError>().With.Message.Contains("not a run folder"));
        File.WriteAllText(Path.Combine(dir, "history.csv"), "a,b\n1,2\n");
        Assert.That(() => RunData.Load(dir), Throws.InstanceOf<UserError>().With.Message.Contains("history.csv is not a history.csv (no epoch/train_loss columns)"));
    }
}
