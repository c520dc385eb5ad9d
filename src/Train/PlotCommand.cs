using System.CommandLine;
using System.Diagnostics;
using Keras.MobileNet.Reports;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

public static class PlotCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("runs") { Description = "Run folders (or a sweep folder holding them)", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: plots/ for several runs, the run folder for one)" };
        var width = new Option<int>("--width-px") { Description = "Image width in pixels", DefaultValueFactory = _ => 1200 };
        var height = new Option<int>("--height-px") { Description = "Image height in pixels", DefaultValueFactory = _ => 900 };
        var scale = new Option<double>("--scale") { Description = "Scale factor (2 = twice the DPI)", DefaultValueFactory = _ => 1.0 };
        var cmd = new Command("plot", "Curves, accuracy vs cost, learning rate, confusion matrix and report.md") { runs, outDir, width, height, scale };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var clock = Stopwatch.StartNew();
            if (p.GetValue(width) is < 200 or > 8000 || p.GetValue(height) is < 150 or > 8000 || !(p.GetValue(scale) is > 0 and <= 8)
                || (double)p.GetValue(width) * p.GetValue(height) * p.GetValue(scale) * p.GetValue(scale) > 64e6)
                throw new ArgumentException("--width-px 200 to 8000, --height-px 150 to 8000, 0 < --scale <= 8, and at most 64 megapixels in all");
            var folders = Expand(p.GetValue(runs)!);
            if (folders.GroupBy(f => Path.TrimEndingDirectorySeparator(Path.GetFullPath(f))).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new ArgumentException($"{twice.First()} is given twice: each run counts once in a comparison");
            var data = folders.Select(RunData.Load).ToList();
            string dir = p.GetValue(outDir) ?? (data.Count == 1 ? folders[0] : "plots");
            var written = Report.Draw(data, dir, new FigureSize(p.GetValue(width), p.GetValue(height), p.GetValue(scale)));
            foreach (var f in written) Console.WriteLine(f);
            Console.WriteLine($"{written.Count} files in {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }

    /// <summary>A sweep folder (no history.csv, sub-folders that have one) stands for its runs.</summary>
    static List<string> Expand(IEnumerable<string> paths) => paths.SelectMany(p =>
        Directory.Exists(p) && !File.Exists(Path.Combine(p, "history.csv"))
        && Directory.GetDirectories(p).Where(d => File.Exists(Path.Combine(d, "history.csv"))).ToList() is { Count: > 0 } subs
            ? subs.Order() : (IEnumerable<string>)[p]).ToList();

    /// <summary>After training: figures for each run, and for a sweep a comparison in its folder.</summary>
    public static void AfterTraining(IReadOnlyList<RunResult> results)
    {
        var data = results.Select(r => RunData.Load(r.Folder)).ToList();
        foreach (var d in data) Report.Draw([d], d.Folder);
        if (results.Count > 1)
        {
            string root = Path.GetDirectoryName(Path.GetFullPath(results[0].Folder))!;
            Report.Draw(data, root);
            Console.WriteLine($"comparison: {Path.Combine(root, "report.md")}");
        }
    }
}
