using Keras.MobileNet.Architecture;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Model;
using Keras.MobileNet.Weights;
using Keras.MobileNet.Backend;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Keras.MobileNet;

/// <summary>
/// The entry point, as <c>keras.applications</c> is Keras's: a MobileNetV2 ready to <see cref="KerasModel.Compile"/>,
/// <see cref="KerasModel.Fit"/>, <see cref="KerasModel.Evaluate"/> and <see cref="KerasModel.Predict"/>.
/// </summary>
public static class Applications
{
    /// <summary>
    /// MobileNetV2 at any width: torchvision's and Keras's network (<see cref="Preset.Paper"/>) or the reference
    /// notebook's (<see cref="Preset.Notebook"/>), initialised from <paramref name="seed"/> or from published weights.
    /// </summary>
    /// <param name="width">The width multiplier (alpha): 1.0, 0.75, 0.5, 0.35, or any value above 0.</param>
    /// <param name="classes">Outputs of the classifier.</param>
    /// <param name="preset">Which network: the paper's (torchvision, Keras) or the notebook's variant.</param>
    /// <param name="weights">Null (random initialisation), a .safetensors or .pth state dict with torchvision's names
    /// (a run's <c>best.safetensors</c>, or torchvision's own file), or <c>imagenet1k-v1</c> / <c>imagenet1k-v2</c>
    /// (downloaded once into <paramref name="weightsDir"/>). A classifier of another class count is left freshly
    /// initialised, as for fine-tuning; every other tensor must match.</param>
    /// <param name="device">Where the network lives (CPU when null).</param>
    /// <param name="seed">Seeds the initialisation (and <see cref="KerasModel.Fit"/>'s dropout).</param>
    /// <param name="dropout">The classifier's dropout (the preset's when null: paper 0.2, notebook 0).</param>
    /// <param name="weightsDir">Where published weights are downloaded (<c>weightsDir/weights/</c>).</param>
    /// <param name="log">Where a download and the head note are reported.</param>
    public static KerasModel MobileNetV2(double width = 1.0, int classes = 1000, Preset preset = Preset.Paper, string? weights = null,
        torch.Device? device = null, long seed = 0, double? dropout = null, string weightsDir = "data", ILogger? log = null)
    {
        var spec = MobileNetV2Spec.Build(preset, width, classes, dropout);
        TorchRuntime.Initialize(); // loads libtorch (made loadable where the system's libstdc++ is older), if not yet
        torch.manual_seed(seed);
        var network = Factories.MobileNetV2(spec);
        if (weights is not null)
        {
            string file = Pretrained.Resolve(weights, weightsDir, log: log);
            if (Pretrained.Load(network, file) is string head) (log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Line(head);
        }
        string[] names = classes == Pretrained.ImageNetClasses.Count ? [.. Pretrained.ImageNetClasses] : [.. Enumerable.Range(0, classes).Select(i => $"{i}")];
        var card = new Runs.ModelCard(preset, width, classes, names, names, 224, Pretrained.ImageNetMean, Pretrained.ImageNetStd, spec.Dropout);
        return new KerasModel(network, device ?? torch.CPU, classes) { Seed = seed, Card = card };
    }
}
