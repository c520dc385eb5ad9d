#:package Keras.MobileNet@0.9.0
#:package TorchSharp-cpu@0.107.0
#:property PublishAot=false
// Trains MobileNetV2 on an image folder (ROOT/{train,val}/<class>/*) with Keras callbacks, into a run folder that
// the command line's predict, evaluate and export read.   dotnet run train-folder.cs [-- ROOT [RUN_FOLDER]]
// Without ROOT it makes a small folder of shapes (four classes) to learn from.
using Keras.MobileNet;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Training;
using TorchSharp;

TorchRuntime.Initialize(); // load libtorch first (on Linux it also works around an older system libstdc++)

string root = args.Length > 0 ? args[0] : Shapes(Path.Combine(Path.GetTempPath(), "km-sample-shapes"));
string runFolder = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), $"km-sample-run-{Environment.ProcessId}");

// The notebook's train and val transforms at 48 px, decoded once and kept in memory.
var options = new TrainOptions { Dataset = DatasetKind.Folder, Data = root, ImageSize = 48, BatchSize = 16 };
var data = TrainingData.Load(options, torch.CPU, new LineLogger(Console.WriteLine));

using var model = Applications.MobileNetV2(width: 0.35, classes: data.ClassFolders.Length, preset: Preset.Notebook, seed: 1);
model.Card = data.Describe(model.Card!); // class names, input size and normalisation go into model.json
model.Compile(new CompileOptions(Optimizers.AdamW(3e-3, weightDecay: 0), Losses.CrossEntropy(labelSmoothing: 0.1)));

const int epochs = 6;
using var checkpoint = new ModelCheckpoint(runFolder); // commits every epoch: weights, history.csv, best.safetensors
var history = model.Fit(data.Train, epochs, validation: data.Val, callbacks:
[
    new LearningRateScheduler(Schedules.CosineAnnealing(3e-3, 3e-5, epochs)),
    new EarlyStopping("val_accuracy", patience: 3),
    new EpochLine(),
    checkpoint,
]);
Console.WriteLine($"best val_accuracy {checkpoint.State.BestValAccuracy:F3} (epoch {checkpoint.State.BestEpoch}), run folder {runFolder}");
return checkpoint.State.CompletedEpochs == epochs ? 0 : 1;


// Four classes of generated shapes, 60 train and 20 val images each (made once, then reused).
static string Shapes(string root) => Directory.Exists(root) ? root : Synthetic.ShapesFolder(root, 4, 60, 20);
/// <summary>A callback of your own: one line per epoch from the logs.</summary>
sealed class EpochLine : Callback
{
    public override void OnEpochEnd(int epoch, Logs logs) =>
        Console.WriteLine($"epoch {epoch + 1}: loss {logs["loss"]:F4}, accuracy {logs["accuracy"]:F3}, val_accuracy {logs.Get("val_accuracy"):F3}, lr {logs["lr"]:G3}");
}
