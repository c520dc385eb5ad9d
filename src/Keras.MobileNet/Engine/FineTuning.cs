using TorchSharp.Modules;
using static TorchSharp.torch;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Engine;

/// <summary>
/// Fine-tuning the Keras way, as a function of the epoch (so a resumed run is in the same phase). Phase 1, epochs
/// before <paramref name="unfreezeEpoch"/>: every child of <c>features</c> is frozen (no gradients) and its BatchNorm
/// layers run in inference mode, as Keras does for <c>trainable = False</c>; only the classifier trains. Phase 2:
/// the children from <paramref name="unfreezeFrom"/> on train again, their BatchNorm layers in inference mode
/// (<paramref name="batchNormTrains"/> false, Keras' advice for small fine-tuning batches) or in training mode; the
/// children before it stay frozen.
/// </summary>
public sealed class FineTuning(int unfreezeEpoch, int unfreezeFrom, bool batchNormTrains) : Callback
{
    /// <summary>Which children of features train at an epoch (index >= the returned value), pure.</summary>
    public static int FirstTrainable(int epoch, int unfreezeEpoch, int unfreezeFrom) => epoch < unfreezeEpoch ? int.MaxValue : unfreezeFrom;

    public override void OnTrainingMode(int epoch)
    {
        Apply(Model.Network, epoch);
        // The frozen children, in inference mode, are what an exported graph computes: on a CPU they run in ONNX Runtime.
        Model.FreezePrefix(FirstTrainable(epoch, unfreezeEpoch, unfreezeFrom));
    }

    public override void OnTrainEnd(Logs logs) => Model.FreezePrefix(0);

    public void Apply(nn.Module network, int epoch)
    {
        int first = FirstTrainable(epoch, unfreezeEpoch, unfreezeFrom);
        var features = network.named_children().First(c => c.name == "features").module;
        foreach (var (name, child) in features.named_children())
        {
            bool trains = int.Parse(name, System.Globalization.CultureInfo.InvariantCulture) >= first;
            foreach (var p in child.parameters()) p.requires_grad = trains;
            if (!trains || !batchNormTrains)
                foreach (var m in child.modules())
                    if (m is BatchNorm bn) bn.eval();
        }
    }
}
