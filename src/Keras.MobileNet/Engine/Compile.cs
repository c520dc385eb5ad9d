using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Engine;

/// <summary>Compile-time choices: how to make the optimizer, the loss, which metrics.</summary>
public sealed record CompileOptions(Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> Optimizer, Func<Tensor, Tensor, Tensor> Loss, int TopK = 5);

public static class Losses
{
    /// <summary>Cross-entropy with label smoothing (TorchSharp's functional form has the option; the factory has not).</summary>
    public static Func<Tensor, Tensor, Tensor> CrossEntropy(double labelSmoothing = 0.0) =>
        (logits, target) => nn.functional.cross_entropy(logits, target, label_smoothing: labelSmoothing);
}

public static class Optimizers
{
    /// <summary>
    /// AdamW with PyTorch's defaults, except that weight decay is always stated (TorchSharp's default is 0, PyTorch's
    /// 0.01). Multi-tensor (one buffer, a few kernels per step: <c>MultiTensor.AdamW</c>) unless
    /// <paramref name="perParameter"/> asks for TorchSharp's own, which loops over the parameter tensors.
    /// </summary>
    public static Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> AdamW(double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool perParameter = false) =>
        perParameter
            ? ps => optim.AdamW(ps, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay)
            : ps => new Optim.AdamW(ps, lr, beta1, beta2, eps, weightDecay);
}
