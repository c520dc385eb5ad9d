using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Model;

public static class StateDicts
{
    /// <summary>
    /// The state dict in PyTorch's order: module by module, each module's parameters then its buffers.
    /// (TorchSharp's state_dict() lists every parameter first and every buffer after; same keys, other order.)
    /// </summary>
    public static List<(string Key, Tensor Value)> InPyTorchOrder(nn.Module model)
    {
        var entries = new List<(string, Tensor)>();
        Visit(model, "", entries);
        return entries;
    }

    // Depth first in registration order, as PyTorch's module.state_dict() walks (TorchSharp's named_modules()
    // lists a module's direct children before their descendants).
    static void Visit(nn.Module module, string prefix, List<(string, Tensor)> entries)
    {
        foreach (var (p, t) in module.named_parameters(recurse: false)) entries.Add((prefix + p, t));
        foreach (var (b, t) in module.named_buffers(recurse: false)) entries.Add((prefix + b, t));
        foreach (var (name, child) in module.named_children()) Visit(child, prefix + name + ".", entries);
    }
}
