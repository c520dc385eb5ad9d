using System.CommandLine;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Export;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

/// <summary>export --onnx OUT.onnx --checkpoint RUN: the network and its preprocessing as one ONNX file.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var onnx = new Option<string>("--onnx") { Description = "The .onnx file to write", Required = true };
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run folder or .safetensors (next to its model.json)", Required = true };
        var opset = new Option<int>("--opset") { Description = "ONNX opset, 11 or later", DefaultValueFactory = _ => 17 };
        var batch = new Option<string>("--batch") { Description = "dynamic, or a fixed batch size", DefaultValueFactory = _ => "dynamic" };
        var keepBn = new Option<bool>("--keep-batchnorm") { Description = "Write BatchNormalization nodes instead of folding them into the convolutions" };
        var int8 = new Option<bool>("--int8") { Description = "Write an int8 model (QDQ: per-channel int8 weights, uint8 activations calibrated on --calibrate's images)" };
        var calibrate = new Option<string?>("--calibrate") { Description = "Folder of images (any depth) whose activations set the int8 ranges, through the val transform" };
        var calibrationImages = new Option<int>("--calibration-images") { Description = "How many of --calibrate's images to use, spread over its files", DefaultValueFactory = _ => 256 };
        var percentile = new Option<double>("--calibration-percentile") { Description = "Each activation's int8 range holds this percentage of its calibration values on each side (100: min and max)", DefaultValueFactory = _ => new Int8Options().Percentile };
        var weightFormat = Words.Choice("--int8-weights", "s7: int8 in 7 bits, 8 in depthwise convolutions (fast on every CPU); s8: full int8 (CPUs with VNNI, ARM; on others ONNX Runtime's 16-bit sums saturate); u8: uint8 (8 bits, no saturation, slower)", Int8Weights.S7);
        var cmd = new Command("export", "Write a trained network as ONNX (for ONNX Runtime and other runtimes)")
            { onnx, checkpoint, opset, batch, keepBn, int8, calibrate, calibrationImages, percentile, weightFormat };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            string b = p.GetValue(batch)!;
            int? fixedBatch = b == "dynamic" ? null
                : int.TryParse(b, out var n) && n >= 1 ? n : throw new UserError($"--batch must be dynamic or a number of at least 1, not '{b}'", 2);
            var options = new OnnxOptions(p.GetValue(opset), fixedBatch, !p.GetValue(keepBn)).Validated();
            bool quantize = p.GetValue(int8);
            string? calibrationDir = p.GetValue(calibrate);
            if (quantize && calibrationDir is null) throw new UserError("--int8 needs --calibrate DIR: a folder of images like the ones the model will see", 2);
            if (!quantize && calibrationDir is not null) throw new UserError("--calibrate is for --int8", 2);
            if (quantize) Int8.Check(options);
            var (card, net) = RunReader.LoadCheckpoint(p.GetValue(checkpoint)!);
            using (net)
            {
                net.eval();
                if (!quantize) OnnxExport.Write(p.GetValue(onnx)!, card, net, options);
                else
                {
                    var (batches, images, skipped) = Calibration.FromFolder(calibrationDir!, card, p.GetValue(calibrationImages));
                    double pct = p.GetValue(percentile);
                    if (!(pct is >= 90 and <= 100)) throw new UserError($"--calibration-percentile must be 90 to 100, not {pct}", 2);
                    var ranges = Int8.Write(p.GetValue(onnx)!, card, net, options, batches, new Int8Options(Percentile: pct, Weights: p.GetValue(weightFormat)));
                    Console.WriteLine($"int8: {ranges.Count} activations calibrated on {images} images of {calibrationDir}" +
                                      (skipped > 0 ? $" ({skipped} unreadable skipped)" : "") + "; weights per channel; classifier float32");
                }
            }
            Console.WriteLine($"wrote {p.GetValue(onnx)} (opset {p.GetValue(opset)}, batch {b}, {card.Classes} classes, input 3x{card.ImageSize}x{card.ImageSize} or any size)");
            return 0;
        }));
        return cmd;
    }
}
