using Keras.MobileNet.Reports;
using ScottPlot;

namespace Keras.MobileNet.Tests;

/// <summary>Seeds in the figures and the report: fixed histories, three seeds of one width and one seed of another.</summary>
public class SeedStatisticsTests
{
    static RunData Run(double width, long seed, double best, double[] valAccuracy) =>
        new($"/runs/paper-w{width}-s{seed}", $"Width-{width}",
            new RunSummary(Preset.Paper, width, 10, 32, (long)(width * 1e6), 0, (long)(width * 1e7), best, valAccuracy.Length, valAccuracy[^1],
                valAccuracy.Length, 10, 100, "cpu", seed, null, new TrainOptions()),
            valAccuracy.Select((v, i) => new HistoryRow(i + 1, 1.0 - v, v - 0.05, 1.1 - v, v, 0.99, 1e-3 / (i + 1), 1)).ToList(), null);

    static List<RunData> Runs() =>
    [
        Run(0.5, 0, 0.70, [0.50, 0.70]),
        Run(1.0, 0, 0.80, [0.60, 0.80]),
        Run(0.5, 1, 0.60, [0.40, 0.60]),
        Run(0.5, 2, 0.80, [0.60, 0.80]),
    ];

    [Test]
    public void Runs_group_by_arch_and_width_with_mean_and_sample_sd_per_epoch()
    {
        var groups = RunGroup.Of(Runs());
        Assert.That(groups.Select(g => (g.Width, g.Runs.Count, g.Label)), Is.EqualTo(new[] { (1.0, 1, "Width-1"), (0.5, 3, "Width-0.5 (3 seeds)") }));
        var curve = groups[1].Curve(h => h.ValAccuracy);
        Assert.That(curve.Select(c => c.Epoch), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(curve[1].Stat.Mean, Is.EqualTo(0.7).Within(1e-12));
        Assert.That(curve[1].Stat.Sd, Is.EqualTo(0.1).Within(1e-12), "sample sd (n - 1) of 0.6, 0.7, 0.8");
        Assert.That((curve[1].Stat.Min, curve[1].Stat.Max, curve[1].Stat.N), Is.EqualTo((0.6, 0.8, 3)));
        Assert.That(groups[0].Curve(h => h.ValAccuracy)[1].Stat.Sd, Is.Zero, "one seed: no spread");
        Assert.That(Spread.Of([double.NaN]), Is.Null);
    }

    [Test]
    public void Curves_draw_the_mean_with_a_band_for_seeds_and_the_run_itself_for_one_seed()
    {
        var mp = Figures.CurvesPlot(RunGroup.Of(Runs()), new FigureSize());
        var valAcc = mp.GetPlot(3);
        var band = valAcc.GetPlottables<ScottPlot.Plottables.FillY>().Single();
        var lines = valAcc.GetPlottables<ScottPlot.Plottables.Scatter>().ToList();
        Assert.That(lines.Select(l => l.LegendText), Is.EqualTo(new[] { "Width-1", "Width-0.5 (3 seeds)" }));
        Assert.That(lines[0].Data.GetScatterPoints().Select(p => p.Y), Is.EqualTo(new[] { 0.60, 0.80 }), "one seed: its own values");
        Assert.That(lines[1].Data.GetScatterPoints().Select(p => p.Y), Is.EqualTo(new[] { 0.5, 0.7 }).Within(1e-12), "seeds: the mean");
        var limits = band.GetAxisLimits();
        Assert.That((limits.Bottom, limits.Top), Is.EqualTo((0.4, 0.8)).Within(1e-12), "mean - sd at epoch 1, mean + sd at epoch 2");
        Assert.That(valAcc.Axes.GetLimits().Top, Is.LessThanOrEqualTo(1.0), "an accuracy axis ends at 100%");

        var single = Figures.CurvesPlot(RunGroup.Of([Runs()[0]]), new FigureSize());
        Assert.That(single.GetPlot(3).GetPlottables<ScottPlot.Plottables.FillY>(), Is.Empty, "one seed draws as before: no band");
    }

    [Test]
    public void Accuracy_vs_cost_has_error_bars_for_seeds_and_stays_below_100_percent()
    {
        var panel = CostFigure.Plot(RunGroup.Of(Runs()), new FigureSize()).GetPlot(0);
        var bar = panel.GetPlottables<ScottPlot.Plottables.ErrorBar>().Single();
        Assert.That((bar.Ys.Single(), bar.YErrorPositive!.Single()), Is.EqualTo((70.0, 10.0)).Within(1e-9));
        Assert.That(panel.GetPlottables<ScottPlot.Plottables.Marker>().Select(t => t.LegendText),
            Is.EquivalentTo(new[] { "Width-1: 80.0%", "Width-0.5 (3 seeds): 70.0 ± 10.0%" }), "each point named in the legend, none beside a point");
        Assert.That(panel.GetPlottables<ScottPlot.Plottables.Text>(), Is.Empty);
        Assert.That(panel.Axes.GetLimits().Top, Is.LessThanOrEqualTo(100));
        var one = CostFigure.Plot(RunGroup.Of([Run(1.0, 0, 0.995, [0.995])]), new FigureSize()).GetPlot(0);
        Assert.That(one.GetPlottables<ScottPlot.Plottables.ErrorBar>(), Is.Empty);
        Assert.That(one.Axes.GetLimits().Top, Is.LessThanOrEqualTo(100), "a point at 99.5% leaves the axis at 100%, not above");
    }

    [Test]
    public void The_report_gives_mean_sd_min_max_and_the_number_of_seeds()
    {
        string md = Report.Markdown(Runs(), "/runs", []);
        Assert.That(md, Does.Contain("| paper | 0.5 | 3 | 70.00 ± 10.00% | 60.00% | 80.00% | 70.00 ± 10.00% |"));
        Assert.That(md, Does.Contain("| paper | 1 | 1 | 80.00 ± 0.00% | 80.00% | 80.00% |"));
        Assert.That(Report.Markdown([Runs()[0]], "/runs", []), Does.Not.Contain("±"), "one seed: the table of runs alone");
        // With latencies: the median of each width's seeds, float32 and int8, in both tables.
        static MeasuredLatency L(double ms) => new(ms, ms, 1, 32, "e", "CPU", 2, 30);
        var timed = Runs().Select((r, i) => r with { Summary = r.Summary! with { Latency = L(1 + i), Int8Latency = L(0.5 + i) } }).ToList();
        string md8 = Report.Markdown(timed, "/runs", []);
        Assert.That(md8, Does.Contain("| MACs | CPU latency | int8 latency |\n| --- |"), "the seeds table's header");
        Assert.That(md8, Does.Contain("| 3.00 ms | 2.50 ms |\n"), "width 0.5: the medians of 1, 3, 4 and of 0.5, 2.5, 3.5 ms");
    }
}
