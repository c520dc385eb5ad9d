#:package Keras.MobileNet@0.9.0
#:package TorchSharp-cpu@0.107.0
#:property PublishAot=false
// Builds MobileNetV2 and summarises it: counts per width (torchvision's numbers), each child at width 0.5 with
// 10 classes, and the built network's parameters against the count.   dotnet run summary.cs
using Keras.MobileNet;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;

TorchRuntime.Initialize(); // load libtorch first (on Linux it also works around an older system libstdc++)

foreach (double w in new[] { 1.0, 0.75, 0.5, 0.35 })
{
    var c = Counts.Of(MobileNetV2Spec.Build(Preset.Paper, w, classes: 1000), 224, 224);
    Console.WriteLine($"width {w,-4}: {c.Total,9:N0} params ({c.Trainable:N0} trainable), {c.Macs,11:N0} MACs at 224 px");
}

var spec = MobileNetV2Spec.Build(Preset.Paper, width: 0.5, classes: 10);
Console.WriteLine($"\nwidth 0.5, 10 classes, per child of the network:\n{"child",-14} {"output",-12} {"params",9}");
foreach (var child in Counts.Layers(spec, 224, 224).GroupBy(l => string.Join('.', l.Name.Split('.').Take(2))))
{
    var last = child.Last();
    Console.WriteLine($"{child.Key,-14} {$"{last.Channels}x{last.Height}x{last.Width}",-12} {child.Sum(l => l.Trainable + l.NonTrainable),9:N0}");
}

using var model = Applications.MobileNetV2(width: 0.5, classes: 10);
long built = model.Network.parameters().Sum(p => p.numel());
long counted = Counts.Of(spec, 224, 224).Trainable;
Console.WriteLine($"\nbuilt network: {built:N0} parameters; counted: {counted:N0}; {(built == counted ? "equal" : "DIFFERENT")}");
return built == counted ? 0 : 1;
