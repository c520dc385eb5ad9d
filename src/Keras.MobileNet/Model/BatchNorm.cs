using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Keras.MobileNet.Model;

/// <summary>
/// BatchNorm2d exactly as TorchSharp's (same parameters, buffers, names and arithmetic: <c>F.batch_norm</c>), but the
/// step counter is incremented with one Scalar that lives as long as the process. TorchSharp's own forward adds a
/// temporary Scalar(1) and passes only its handle to libtorch; the GC may finalize (free) that Scalar while libtorch
/// still reads it, when another thread's allocation starts a collection during the call. CI saw it as
/// "Expected false to be true ... from toLong at c10/core/Scalar.h" in BatchNorm.forward, and as "Unknown scalar type".
/// </summary>
public sealed class SafeBatchNorm2d(long features, double eps, double momentum)
    : BatchNorm(features, eps, momentum, affine: true, track_running_stats: true, device: null, dtype: null, name: "BatchNorm2d")
{
    static readonly Scalar One = 1L.ToScalar(); // never finalized: a static root

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"expected 4D input, but got {input.ndim}D input.");
    }

    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        if (training) num_batches_tracked!.add_(One, One);
        return nn.functional.batch_norm(input, running_mean, running_var, weight, bias, training, momentum!.Value, eps);
    }
}
