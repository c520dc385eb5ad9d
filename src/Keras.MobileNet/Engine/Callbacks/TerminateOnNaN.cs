using TorchSharp;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Engine;

/// <summary>Stops when the loss stops being finite: names the epoch and batch; checkpoints are not overwritten.</summary>
public sealed class TerminateOnNaN(int checkEveryBatches = 10) : Callback
{
    int epoch;
    public override void OnEpochBegin(int epoch, Logs logs) => this.epoch = epoch;

    public override void OnBatchEnd(int batch, Logs logs)
    {
        if ((batch + 1) % checkEveryBatches != 0 || Model.RunningState is null) return;
        int bad = Model.RunningState().FirstBadBatch;
        if (bad >= 0) Stop(bad);
    }

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        int bad = (int)(logs.Get("first_nonfinite_batch") ?? -1);
        if (bad >= 0) Stop(bad);
        else if (logs.Get("val_loss") is double v && !double.IsFinite(v)) Stop($"validation loss became NaN or infinite at epoch {epoch + 1}; stopped");
        else if (NonFinite.FirstIn(Model.Network) is string name) Stop($"{name} became NaN or infinite at epoch {epoch + 1}; stopped");
    }

    void Stop(int batch) => Stop($"loss became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}; stopped");

    void Stop(string reason)
    {
        Model.StopTraining = true;
        Model.Failed = true;
        Model.StopReason ??= reason;
    }
}

/// <summary>Finds weights or BatchNorm statistics that are no longer finite (a finite loss does not prove they are).</summary>
public static class NonFinite
{
    /// <summary>The key of the first parameter or buffer holding NaN or infinity, or null.</summary>
    public static string? FirstIn(torch.nn.Module module)
    {
        using var _ = torch.NewDisposeScope();
        using var __ = torch.no_grad();
        foreach (var (name, t) in module.state_dict())
            if (t.is_floating_point() && !t.isfinite().all().item<bool>()) return $"'{name}'";
        return null;
    }

    /// <summary>True when an epoch's logs or the network carry a non-finite value: such an epoch is not committed.</summary>
    public static bool Epoch(Logs logs, torch.nn.Module module) =>
        !double.IsFinite(logs.Get("loss") ?? double.NaN) || (logs.Get("first_nonfinite_batch") ?? -1) >= 0
        || logs.Get("val_loss") is double v && !double.IsFinite(v) || FirstIn(module) is not null;
}
