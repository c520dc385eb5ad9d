using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Keras.MobileNet.Model;

/// <summary>fp32, or bf16 mixed precision as autocast does it: convolutions compute in bf16, the rest stays fp32.</summary>
public enum Precision { Fp32, Bf16 }

/// <summary>
/// Layout of activations and conv weights: auto = channels-last, on CUDA and on a CPU alike (measured faster on both:
/// a CPU train step 1.5-1.85x at 224 px, docs/benchmarks.md); contiguous (NCHW) when asked.
/// </summary>
public enum MemoryFormat { Auto, Contiguous, ChannelsLast }

/// <summary>
/// What computes a forward pass without gradients (evaluation, validation, prediction): auto = ONNX Runtime on a CPU
/// (the network exported in memory from its current weights, BatchNorm folded: 6-36x libtorch's speed there) and
/// libtorch on a GPU; or always one of them.
/// </summary>
public enum InferenceEngine
{
    Auto,
    Torch,
    [System.Text.Json.Serialization.JsonStringEnumMemberName("onnxruntime")] OnnxRuntime,
}

/// <summary>
/// torch.nn.Conv2d with an optional compute type: with <see cref="Compute"/> set (bf16), the input, weight and bias are
/// cast to it for the convolution, as autocast does, while the parameter itself stays fp32 (the optimizer's master
/// weight, the checkpoint's tensor). Same parameters, names, initialisation draws and arithmetic as TorchSharp's
/// Conv2d when <see cref="Compute"/> is null.
/// </summary>
public sealed class MixedConv2d(long inChannels, long outChannels, long kernel, long step, long pad, long groups, bool bias)
    : Convolution("Conv2d", inChannels, outChannels, [kernel, kernel], [step, step], [pad, pad], null, [1, 1], false, [0, 0], groups, bias, PaddingModes.Zeros)
{
    public ScalarType? Compute { get; set; }

    public override Tensor forward(Tensor input)
    {
        if (Compute is not ScalarType c || weight.dtype == c)
            return nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups);
        using var w = weight.to(c);
        using var b = bias?.to(c);
        using var x = input.dtype == c ? null : input.to(c);
        return nn.functional.conv2d(x ?? input, w, b, stride, padding, dilation, groups);
    }
}

public static class Layouts
{
    public static MemoryFormat Resolve(MemoryFormat f, Device device) =>
        f != MemoryFormat.Auto ? f : device.type is DeviceType.CUDA or DeviceType.CPU ? MemoryFormat.ChannelsLast : MemoryFormat.Contiguous;

    /// <summary>
    /// NCHW shape with NHWC strides, the way <c>memory_format=torch.channels_last</c> lays a tensor out (TorchSharp has
    /// no memory_format argument: a permute, contiguous() and the inverse permute give the same strides).
    /// </summary>
    public static Tensor ChannelsLast(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1);
        using var dense = nhwc.contiguous();
        return dense.permute(0, 3, 1, 2);
    }

    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        var s = x.stride();
        var n = x.shape;
        long[] nhwc = [n[1] * n[2] * n[3], 1, n[3] * n[1], n[1]]; // a dimension of size 1 may have any stride, as in PyTorch
        return Enumerable.Range(0, 4).All(d => n[d] == 1 || s[d] == nhwc[d]);
    }

    /// <summary>
    /// Sets the compute type of every convolution and the layout of every conv weight (in place: the same Parameter
    /// objects, so an optimizer made afterwards sees them as they are). Call before Compile.
    /// </summary>
    public static void Apply(nn.Module network, Precision precision, MemoryFormat format)
    {
        using var _ = no_grad();
        foreach (var (_, m) in network.named_modules())
            if (m is MixedConv2d conv)
            {
                conv.Compute = precision == Precision.Bf16 ? ScalarType.BFloat16 : null;
                var w = conv.weight;
                if (format == MemoryFormat.ChannelsLast && !IsChannelsLast(w))
                    using (var cl = ChannelsLast(w)) w.set_(cl);
                else if (format == MemoryFormat.Contiguous && !w.is_contiguous())
                    using (var c = w.contiguous()) w.set_(c);
            }
    }
}
