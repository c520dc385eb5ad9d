using Google.Protobuf;
using Keras.MobileNet.Runs;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Keras.MobileNet.Export;

/// <summary>
/// A network's current weights as an ONNX Runtime session on the CPU, exported in memory (BatchNorm folded into the
/// convolutions, as <c>export --onnx</c> writes it): the forward pass of evaluation and prediction at ONNX Runtime's
/// speed. It computes what the network computes in inference mode; later changes to the weights are not seen (build
/// another).
/// </summary>
public sealed class OrtForward : IDisposable
{
    readonly InferenceSession session;
    readonly string output;

    OrtForward(InferenceSession session, string output) => (this.session, this.output) = (session, output);

    static OrtForward Open(Onnx.ModelProto model, string output, int threads)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads > 0 ? threads : get_num_threads(),
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        return new OrtForward(new InferenceSession(model.ToByteArray(), options), output);
    }

    /// <param name="card">The network's preset, width and classes (the graph is written from its spec).</param>
    /// <param name="network">A MobileNetV2 of that spec (torchvision's key layout).</param>
    /// <param name="threads">ONNX Runtime's intra-op threads; 0 = libtorch's thread count, so both engines use the same cores.</param>
    public static OrtForward FromNetwork(ModelCard card, nn.Module network, int threads = 0) =>
        Open(OnnxExport.Build(card, network, new OnnxOptions()), OnnxExport.Output, threads);

    /// <summary>A model of the whole network written elsewhere (an int8 model of <see cref="Int8.Quantize"/>): logits.</summary>
    public static OrtForward FromModel(Onnx.ModelProto model, int threads = 0) => Open(model, OnnxExport.Output, threads);

    /// <summary>The first <paramref name="children"/> children of <c>features</c> in inference mode (fine-tuning's frozen part).</summary>
    public static OrtForward FromPrefix(ModelCard card, nn.Module network, int children, int threads = 0) =>
        Open(OnnxExport.BuildPrefix(card, network, children), OnnxExport.PrefixOutput, threads);

    /// <summary>The graph's output (float32, CPU: logits [n, classes], or a prefix's activations [n, C, h, w]) for
    /// normalised images [n, 3, H, W] in any layout or dtype.</summary>
    public Tensor Forward(Tensor images)
    {
        long[] shape = images.shape;
        float[] data;
        using (var x = images.to(ScalarType.Float32, CPU).contiguous()) data = x.data<float>().ToArray();
        var input = new DenseTensor<float>(data, [(int)shape[0], (int)shape[1], (int)shape[2], (int)shape[3]]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.Input, input)]);
        var result = results.First(r => r.Name == output).AsTensor<float>();
        return tensor(result.ToArray(), [.. result.Dimensions.ToArray().Select(d => (long)d)]);
    }

    public void Dispose() => session.Dispose();
}
