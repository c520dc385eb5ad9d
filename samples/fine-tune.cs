#:package Keras.MobileNet@0.9.0
#:package TorchSharp-cpu@0.107.0
#:property PublishAot=false
// Fine-tunes from a safetensors file, as --weights does: the ImageNet head is replaced by one for the folder's classes,
// the features stay frozen (BatchNorm in inference mode) for the first epochs, then blocks 12 on train.
//   dotnet run fine-tune.cs [-- WEIGHTS.safetensors [ROOT]]
// WEIGHTS: torchvision's mobilenet_v2 file (or imagenet1k-v2 to download it), or any run's best.safetensors of the same
// width. Without it, this sample writes a 1000-class network of its own to stand in for one.
using Keras.MobileNet;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Runs;
using Keras.MobileNet.Training;
using TorchSharp;

TorchRuntime.Initialize(); // load libtorch first (on Linux it also works around an older system libstdc++)

string weights = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "km-sample-imagenet-standin.safetensors");
if (args.Length == 0)
    using (var standIn = Applications.MobileNetV2(width: 0.35, classes: 1000, seed: 7)) Checkpoints.Save(standIn.Network, weights);
string root = args.Length > 1 ? args[1] : Shapes(Path.Combine(Path.GetTempPath(), "km-sample-shapes"));

var data = TrainingData.Load(new TrainOptions { Dataset = DatasetKind.Folder, Data = root, ImageSize = 64, BatchSize = 16 }, torch.CPU);
var log = new LineLogger(Console.WriteLine);
using var model = Applications.MobileNetV2(width: 0.35, classes: data.ClassFolders.Length, weights: weights, log: log);
model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, weightDecay: 0), Losses.CrossEntropy(labelSmoothing: 0.1)));

const int epochs = 3, unfreezeEpoch = 2, unfreezeFrom = 12;
var trainable = new List<long>();
var history = model.Fit(data.Train, epochs, validation: data.Val, callbacks:
[
    new FineTuning(unfreezeEpoch, unfreezeFrom, batchNormTrains: false),
    new LearningRateScheduler(e => e < unfreezeEpoch ? 1e-3 : 1e-4), // phase 2 at a tenth of the rate
    new CountTrainable(trainable),
]);
for (int e = 0; e < epochs; e++)
    Console.WriteLine($"epoch {e + 1}: {trainable[e],9:N0} trainable parameters, val_accuracy {history.Epochs[e].Logs.Get("val_accuracy"):F3}");
return trainable[0] < trainable[^1] ? 0 : 1; // the head alone first, then blocks 12 on as well


// Four classes of generated shapes, 60 train and 20 val images each (made once, then reused).
static string Shapes(string root) => Directory.Exists(root) ? root : Synthetic.ShapesFolder(root, 4, 60, 20);
/// <summary>Counts the parameters that receive gradients each epoch, once FineTuning has set them.</summary>
sealed class CountTrainable(List<long> counts) : Callback
{
    public override void OnEpochEnd(int epoch, Logs logs) =>
        counts.Add(Model.Network.parameters().Where(p => p.requires_grad).Sum(p => p.numel()));
}
