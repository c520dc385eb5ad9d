using System.CommandLine;
using Keras.MobileNet.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Keras.MobileNet.Cli;

/// <summary>Hidden: resizes an image with our Pillow-compatible resample and writes a PNG, to compare with Pillow itself.</summary>
public static class DiagCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input");
        var output = new Argument<string>("output");
        var width = new Argument<int>("width");
        var height = new Argument<int>("height");
        var cmd = new Command("diag-resize", "Resize with the training pipeline's resample (for cross-checks)") { input, output, width, height };
        cmd.Hidden = true;
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var src = ImageOps.DecodeFile(p.GetValue(input)!);
            var r = ImageOps.Resize(src, p.GetValue(width), p.GetValue(height));
            using var img = Image.LoadPixelData<Rgb24>(r.Pixels, r.Width, r.Height);
            img.SaveAsPng(p.GetValue(output)!);
            return 0;
        }));
        return cmd;
    }
}
