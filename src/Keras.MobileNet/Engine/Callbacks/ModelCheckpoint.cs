using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Engine;

/// <summary>
/// Saves last.safetensors (+ optimizer and trainer state, for --resume) after every epoch, and best.safetensors when
/// val_accuracy improves. An epoch whose loss is not finite saves nothing, so the last good checkpoint stays.
/// </summary>
public sealed class ModelCheckpoint(string dir, Action<int, Logs, bool>? onSaved = null) : Callback
{
    public double BestValue { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; } = -1;

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (NonFinite.Epoch(logs, Model.Network)) return;
        Checkpoints.Save(Model.Network, Path.Combine(dir, "last.safetensors"));
        double v = logs.Get("val_accuracy") ?? logs["accuracy"];
        bool best = v > BestValue;
        if (best)
        {
            BestValue = v;
            BestEpoch = epoch + 1;
            Checkpoints.Save(Model.Network, Path.Combine(dir, "best.safetensors"));
        }
        Backend.AtomicFile.Write(Path.Combine(dir, "optimizer.bin"), tmp => Checkpoints.SaveOptimizer(Model.Optimizer!, tmp));
        onSaved?.Invoke(epoch, logs, best);
    }
}
