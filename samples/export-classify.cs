#:package Keras.MobileNet@0.9.0
#:package TorchSharp-cpu@0.107.0
#:property PublishAot=false
// Exports a trained network to ONNX (BatchNorm folded) and classifies images with ONNX Runtime, beside TorchSharp.
//   dotnet run export-classify.cs -- RUN_FOLDER IMAGE...
// RUN_FOLDER: a run of the command line or of train-folder.cs (it holds model.json and best.safetensors).
using Keras.MobileNet.Backend;
using Keras.MobileNet.Export;
using Keras.MobileNet.Inference;
using Keras.MobileNet.Runs;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

TorchRuntime.Initialize(); // load libtorch first (on Linux it also works around an older system libstdc++)
if (args.Length < 2) { Console.Error.WriteLine("usage: dotnet run export-classify.cs -- RUN_FOLDER IMAGE..."); return 2; }
string[] images = args[1..];

var (card, net) = RunReader.LoadCheckpoint(args[0]);
net.eval();
string onnx = Path.Combine(Path.GetTempPath(), $"km-sample-{Environment.ProcessId}.onnx");
OnnxExport.Write(onnx, card, net, new OnnxOptions(Opset: 17));
Console.WriteLine($"wrote {onnx}: {card.Arch} width {card.Width}, {card.Classes} classes, input 3x{card.ImageSize}x{card.ImageSize}");

// The same preprocessing for both (the val transform: resize, centre crop, normalise), then the top class of each.
float[] input = Predictions.Preprocess(images, card);
List<Prediction> byOrt;
using (var session = new InferenceSession(onnx))
{
    var tensor = new DenseTensor<float>(input, [images.Length, 3, card.ImageSize, card.ImageSize]);
    using var output = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), tensor)]);
    byOrt = Predictions.Top(images, output.First().AsEnumerable<float>().ToArray(), card, k: 1);
}
File.Delete(onnx);
var byTorch = Predictions.Run(card, net, images, k: 1); // takes the network and frees it
int agree = 0;
for (int i = 0; i < images.Length; i++)
{
    var (o, t) = (byOrt[i].Top[0], byTorch[i].Top[0]);
    agree += o.Class == t.Class ? 1 : 0;
    Console.WriteLine($"{Path.GetFileName(images[i])}: {o.Class} {o.Probability:P1} (ONNX Runtime), {t.Class} {t.Probability:P1} (TorchSharp)");
}
return agree == images.Length ? 0 : 1;
