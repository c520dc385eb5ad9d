using System.CommandLine;
using Keras.MobileNet.Data;

namespace Keras.MobileNet.Cli;

/// <summary>Writes the generated shapes dataset (a learnable image folder for smoke runs without downloads).</summary>
public static class SynthCommand
{
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "Folder to create", Required = true };
        var classes = new Option<int>("--classes") { DefaultValueFactory = _ => 4 };
        var train = new Option<int>("--train") { Description = "Train images per class", DefaultValueFactory = _ => 100 };
        var val = new Option<int>("--val") { Description = "Val images per class", DefaultValueFactory = _ => 25 };
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 48 };
        var cmd = new Command("synth", "Generate a learnable shapes image folder (ROOT/{train,val}/<shape>/*.png)") { outDir, classes, train, val, size };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            string root = Synthetic.ShapesFolder(p.GetValue(outDir)!, p.GetValue(classes), p.GetValue(train), p.GetValue(val), p.GetValue(size));
            Console.WriteLine($"wrote {root}");
            return 0;
        }));
        return cmd;
    }
}
