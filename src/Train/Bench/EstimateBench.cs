using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using Keras.MobileNet.Training;

namespace Keras.MobileNet.Cli;

/// <summary>
/// bench estimate: how close the time estimate printed before a run comes to the time the run took. A figure that
/// depends on what else the machine runs, so it is measured here and printed, never asserted in a test.
/// </summary>
public static class EstimateBench
{
    public static Command Create()
    {
        var widths = new Option<string>("--width") { Description = "Widths, e.g. 0.5,0.25", DefaultValueFactory = _ => "0.5" };
        var size = new Option<int>("--image-size") { Description = "Crop size", DefaultValueFactory = _ => 48 };
        var epochs = new Option<int>("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 4 };
        var perClass = new Option<int>("--images") { Description = "Generated train images per class (4 classes)", DefaultValueFactory = _ => 60 };
        var cmd = new Command("estimate", "The time estimate against the time a run then takes, on generated shapes") { widths, size, epochs, perClass };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            string work = Directory.CreateTempSubdirectory("km-bench-estimate-").FullName;
            try
            {
                string data = Path.Combine(work, "data");
                Synthetic.ShapesFolder(data, classes: 4, trainPerClass: p.GetValue(perClass), valPerClass: Math.Max(1, p.GetValue(perClass) / 3), size: p.GetValue(size));
                var lines = new List<string>();
                var o = new TrainOptions
                {
                    Dataset = DatasetKind.Folder, Data = data, ImageSize = p.GetValue(size), Epochs = p.GetValue(epochs), BatchSize = 16,
                    Arch = Architecture.Preset.Notebook, Lr = 3e-3, Widths = Words.Widths(p.GetValue(widths)!), Out = Path.Combine(work, "runs"),
                };
                o = o with { Out = o.Widths.Length > 1 ? o.Out : Path.Combine(o.Out!, "run") };
                Runner.TrainAll(o, new Backend.LineLogger(line => { lines.Add(line); Console.Error.WriteLine(line); }));
                Console.WriteLine("| width | estimated | took | took / estimated |");
                Console.WriteLine("| ---: | ---: | ---: | ---: |");
                var widthsRun = o.Widths;
                int i = 0;
                foreach (var line in lines)
                {
                    var m = Regex.Match(line, @"trained for ([\d.:dhs ]+) \(estimated ([\d.:dhs ]+)\)");
                    if (!m.Success) continue;
                    double took = Seconds(m.Groups[1].Value), est = Seconds(m.Groups[2].Value);
                    Console.WriteLine($"| {widthsRun[Math.Min(i++, widthsRun.Length - 1)].ToString(CultureInfo.InvariantCulture)} | {est:F1} s | {took:F1} s | {took / est:F2} |");
                }
                return 0;
            }
            finally { Directory.Delete(work, true); }
        }));
        return cmd;
    }

    /// <summary>Seconds from Estimate.Duration's words: 4.2s, 3:07, 1:02:03.</summary>
    static double Seconds(string text)
    {
        text = text.Trim();
        if (text.EndsWith('s')) return double.Parse(text[..^1], CultureInfo.InvariantCulture);
        var parts = text.Split(':').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        return parts.Aggregate(0.0, (acc, v) => acc * 60 + v);
    }
}
