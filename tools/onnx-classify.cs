#:package Microsoft.ML.OnnxRuntime@1.31.1
#:package SixLabors.ImageSharp@2.1.13
#:property PublishAot=false
// Classifies an image with an exported MobileNetV2 and nothing but ONNX Runtime and ImageSharp:
//   dotnet run tools/onnx-classify.cs -- model.onnx image.jpg
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

using var session = new InferenceSession(args[0]);
var meta = session.ModelMetadata.CustomMetadataMap;
int size = int.Parse(meta["image_size"]);
var (mean, std) = (JsonSerializer.Deserialize<float[]>(meta["mean"])!, JsonSerializer.Deserialize<float[]>(meta["std"])!);
var names = JsonSerializer.Deserialize<string[]>(meta["class_names"])!;
using var image = Image.Load<Rgb24>(args[1]);
int shorter = (int)Math.Round(256.0 * size / 224, MidpointRounding.AwayFromZero); // resize, then centre crop
image.Mutate(x => x.Resize(new ResizeOptions { Size = new Size(shorter, shorter), Mode = ResizeMode.Min }).Crop(
    new Rectangle((image.Width - size) / 2, (image.Height - size) / 2, size, size)));
var input = new DenseTensor<float>([1, 3, size, size]);
for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
    {
        var px = image[x, y];
        byte[] rgb = [px.R, px.G, px.B];
        for (int c = 0; c < 3; c++) input[0, c, y, x] = (rgb[c] / 255f - mean[c]) / std[c];
    }
using var output = session.Run([NamedOnnxValue.CreateFromTensor("input", input)]);
var logits = output[0].AsEnumerable<float>().ToArray();
var p = logits.Select(v => Math.Exp(v - logits.Max())).ToArray();
foreach (int i in Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).Take(3))
    Console.WriteLine($"{names[i]} {p[i] / p.Sum():P1}");
