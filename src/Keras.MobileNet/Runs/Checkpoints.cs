using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;

namespace Keras.MobileNet.Runs;

/// <summary>An optimizer that writes its own state file (the multi-tensor AdamW: its flat buffers as TorchSharp's format).</summary>
public interface IOptimizerState
{
    void SaveState(string path);
    void LoadState(string path);
}

/// <summary>Weights (safetensors, torchvision's names) and optimizer state files.</summary>
public static partial class Checkpoints
{
    /// <summary>The optimizer's state file (TorchSharp's format), whatever the layout of the multi-tensor AdamW's buffer.</summary>
    public static void SaveOptimizer(torch.optim.Optimizer optimizer, string path)
    {
        if (optimizer is IOptimizerState own) own.SaveState(path);
        else ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(path);
    }

    public static void LoadOptimizer(torch.optim.Optimizer optimizer, string path)
    {
        if (optimizer is IOptimizerState own) own.LoadState(path);
        else ((TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(path);
    }

    /// <summary>Writes the state dict (torchvision key names) as safetensors, via a temp file.</summary>
    public static void Save(torch.nn.Module model, string path)
    {
        // Host copies, in PyTorch's key order: the file is the same whatever device trained the weights.
        using (torch.NewDisposeScope()) // the detached views and host copies
        {
            var state = Model.StateDicts.InPyTorchOrder(model).ToDictionary(e => e.Key, e => e.Value.detach().cpu().contiguous()); // channels-last weights too
            Backend.AtomicFile.Write(path, tmp => Safetensors.SaveStateDict(tmp, state));
        }
    }

    /// <summary>Loads a safetensors checkpoint; a missing key or a shape that differs is named in the error.</summary>
    public static void Load(torch.nn.Module model, string path)
    {
        CheckSafetensors(path);
        Dictionary<string, torch.Tensor> saved;
        try { saved = Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new Backend.UserError($"{path} is not a readable safetensors checkpoint ({e.Message.Split('\n')[0]})");
        }
        try { Copy(model, saved, path, newHeadAllowed: false); }
        finally { foreach (var s in saved.Values) s.Dispose(); }
    }
}

public static partial class Checkpoints
{
    /// <summary>
    /// Copies a state dict into <paramref name="network"/>, the one rule for checkpoints and --weights: a tensor missing,
    /// extra or of another shape is named in the error; with <paramref name="newHeadAllowed"/>, a classifier of another
    /// class count is left as the network initialised it, and the returned note says so.
    /// </summary>
    public static string? Copy(torch.nn.Module network, Dictionary<string, torch.Tensor> saved, string source, bool newHeadAllowed)
    {
        string? note = null;
        var own = network.state_dict();
        foreach (var (k, t) in own)
        {
            if (!saved.TryGetValue(k, out var s)) throw new Backend.UserError($"{source}: tensor '{k}' is missing");
            if (s.shape.SequenceEqual(t.shape)) continue;
            bool head = newHeadAllowed && k.StartsWith("classifier.1.", StringComparison.Ordinal) && s.shape.Skip(1).SequenceEqual(t.shape.Skip(1));
            if (!head)
                throw new Backend.UserError($"{source}: tensor '{k}' has shape [{string.Join(", ", s.shape)}], the network needs [{string.Join(", ", t.shape)}]");
            note = $"{source} has {s.shape[0]} classes, this network {t.shape[0]}: the classifier is new (as Keras' include_top=False), the rest is loaded";
        }
        var extra = saved.Keys.Except(own.Keys).ToList();
        if (extra.Count > 0) throw new Backend.UserError($"{source}: unexpected tensor '{extra[0]}' (not a MobileNetV2 state dict with torchvision's names?)");
        foreach (var (k, t) in own)
        {
            var s = saved[k];
            // Weights are floating point and finite; BatchNorm's counter is an integer. A silent cast or a NaN would give
            // NaN probabilities with exit 0.
            bool counter = k.EndsWith(".num_batches_tracked", StringComparison.Ordinal);
            if (counter ? s.dtype is not (torch.ScalarType.Int64 or torch.ScalarType.Int32) : !s.is_floating_point())
                throw new Backend.UserError($"{source}: tensor '{k}' is {s.dtype}, not {(counter ? "an integer" : "floating point")}");
            if (!counter && !s.isfinite().all().item<bool>())
                throw new Backend.UserError($"{source}: tensor '{k}' holds NaN or infinite values");
        }
        using var _ = torch.no_grad();
        foreach (var (k, t) in own)
            if (saved[k].shape.SequenceEqual(t.shape)) t.copy_(saved[k]);
        return note;
    }
}
