using TorchSharp;

namespace Keras.MobileNet.Engine;

/// <summary>Keras EarlyStopping: stop when the monitored value has not improved by min_delta for patience epochs.</summary>
public sealed class EarlyStopping(string monitor = "val_loss", int patience = 10, double minDelta = 0, bool? higherIsBetter = null,
    bool restoreBestWeights = false) : Callback
{
    readonly bool up = higherIsBetter ?? monitor.Contains("acc");
    double best;
    int wait;
    Dictionary<string, torch.Tensor>? bestWeights;
    public int? StoppedEpoch { get; private set; }

    public override void OnTrainBegin(Logs logs) { best = up ? double.NegativeInfinity : double.PositiveInfinity; wait = 0; }

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (logs.Get(monitor) is not double v || double.IsNaN(v)) return;
        if (up ? v > best + minDelta : v < best - minDelta)
        {
            best = v;
            wait = 0;
            if (restoreBestWeights)
            {
                DisposeBestWeights();
                using (torch.NewDisposeScope())
                    bestWeights = Model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().MoveToOuterDisposeScope());
            }
        }
        else if (++wait >= patience)
        {
            StoppedEpoch = epoch;
            Model.StopTraining = true;
            Model.StopReason ??= $"early stopping: {monitor} did not improve for {patience} epochs";
        }
    }

    public override void OnTrainEnd(Logs logs)
    {
        if (StoppedEpoch is not null && bestWeights is not null) Model.Network.load_state_dict(bestWeights);
        DisposeBestWeights();
    }

    void DisposeBestWeights()
    {
        if (bestWeights is null) return;
        foreach (var t in bestWeights.Values) t.Dispose();
        bestWeights = null;
    }
}
