using System.CommandLine;
using System.Globalization;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Model;
using Spectre.Console;

namespace Keras.MobileNet.Cli;

public static class SummaryCommand
{
    public static Command Create()
    {
        var width = new Option<double>("--width") { Description = "Width multiplier (> 0)", DefaultValueFactory = _ => 1.0 };
        var arch = Words.Choice("--arch", "The network: paper (torchvision/Keras) or notebook", Preset.Paper);
        var classes = new Option<int>("--classes") { Description = "Number of classes (>= 2)", DefaultValueFactory = _ => 1000 };
        var size = new Option<int>("--image-size") { Description = "Square input size in pixels (>= 32)", DefaultValueFactory = _ => 224 };
        var check = new Option<bool>("--check") { Description = "Also build the module and compare its parameter count" };
        var unfreeze = new Option<int?>("--unfreeze-from") { Description = "Fine-tuning: count features.0..K-1 as frozen (19: all of features, phase 1)" };
        var cmd = new Command("summary", "Print a Keras-style layer table with params and MACs") { width, arch, classes, size, check, unfreeze };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var spec = MobileNetV2Spec.Build(p.GetValue(arch), p.GetValue(width), p.GetValue(classes));
            int s = p.GetValue(size);
            Print(spec, s);
            if (p.GetValue(unfreeze) is int k)
            {
                var f = Counts.UnderFreeze(spec, k, s, s);
                Console.WriteLine($"Under the freeze ({(k == 0 ? "nothing" : $"features.0-{k - 1}")} frozen): trainable params {N(f.Trainable)}, non-trainable params {N(f.NonTrainable)}");
            }
            if (p.GetValue(check))
            {
                using var model = Factories.MobileNetV2(spec);
                long live = model.parameters().Sum(t => t.numel());
                Console.WriteLine($"Built module params: {N(live)} ({(live == Counts.Of(spec, s, s).Trainable ? "matches" : "DIFFERS")})");
            }
            return 0;
        }));
        return cmd;
    }

    public static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    public static void Print(NetworkSpec spec, int imageSize)
    {
        var layers = Counts.Layers(spec, imageSize, imageSize);
        var table = new Table().Border(TableBorder.Simple)
            .AddColumn("Layer (type)").AddColumn("Output Shape").AddColumn(new TableColumn("Param #").RightAligned());
        foreach (var l in layers)
            table.AddRow(Markup.Escape($"{l.Name} ({l.Kind})"), $"(None, {l.Channels}, {l.Height}, {l.Width})",
                N(l.Trainable + l.NonTrainable));
        Console.WriteLine($"Model: \"mobilenetv2_{spec.Width.ToString(CultureInfo.InvariantCulture)}_{Runs.Files.Word(spec.Preset)}\"  input (None, 3, {imageSize}, {imageSize})");
        App.Console2.Write(table);
        var c = Counts.Of(spec, imageSize, imageSize);
        Console.WriteLine($"Total params: {N(c.Total)}");
        Console.WriteLine($"Trainable params: {N(c.Trainable)}");
        Console.WriteLine($"Non-trainable params: {N(c.NonTrainable)}");
        Console.WriteLine($"MACs: {N(c.Macs)}");
    }
}
