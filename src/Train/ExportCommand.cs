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
        var cmd = new Command("export", "Write a trained network as ONNX (for ONNX Runtime and other runtimes)") { onnx, checkpoint, opset, batch, keepBn };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            string b = p.GetValue(batch)!;
            int? fixedBatch = b == "dynamic" ? null
                : int.TryParse(b, out var n) && n >= 1 ? n : throw new UserError($"--batch must be dynamic or a number of at least 1, not '{b}'", 2);
            var options = new OnnxOptions(p.GetValue(opset), fixedBatch, !p.GetValue(keepBn)).Validated();
            var (card, net) = RunReader.LoadCheckpoint(p.GetValue(checkpoint)!);
            using (net)
            {
                net.eval();
                OnnxExport.Write(p.GetValue(onnx)!, card, net, options);
            }
            Console.WriteLine($"wrote {p.GetValue(onnx)} (opset {p.GetValue(opset)}, batch {b}, {card.Classes} classes, input 3x{card.ImageSize}x{card.ImageSize} or any size)");
            return 0;
        }));
        return cmd;
    }
}
