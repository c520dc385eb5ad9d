using Google.Protobuf;
using Keras.MobileNet.Backend;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;
using Tensor = TorchSharp.torch.Tensor;

namespace Keras.MobileNet.Export;

/// <summary>
/// Post-training int8 quantization of an exported graph (BatchNorm folded) in ONNX's QDQ form, as ONNX Runtime's own
/// quantizer writes it: every convolution's weights per output channel, symmetric int8 (zero point 0), its bias int32
/// at input scale x weight scale; the activations that convolutions, additions and the pooling read, and each
/// addition's result, uint8 per tensor with a zero point, their ranges from calibration images: a histogram of each
/// tensor over all of them, clipped at <see cref="Percentile"/> (one outlier does not set the range). The classifier
/// (pooling and Gemm) stays float32. ONNX Runtime fuses the pairs into QLinearConv/QLinearAdd.
/// <see cref="Weights"/>: how the weights are stored, see <see cref="Int8Weights"/>.
/// </summary>
public sealed record Int8Options(double Percentile = 99.999, int Bins = 2048, Int8Weights Weights = Int8Weights.S7);

/// <summary>
/// The weights' storage. On an x86 CPU without VNNI, ONNX Runtime's uint8 x int8 kernels add pairs of products in
/// saturating 16-bit lanes, which full-range int8 weights overflow (on this project's AVX2 machine a test network's
/// logits moved by 11% of their range). S7: int8 in [-63, 63] (ONNX Runtime's reduce_range), and [-127, 127] in the
/// depthwise convolutions, which do not use that GEMM (fast everywhere, the default); S8: int8 in [-127, 127] (for VNNI and ARM CPUs); U8: uint8 with zero point 128 (full 8 bits without
/// saturation on any CPU, but ONNX Runtime's u8 x u8 kernels are slower: about float32's speed here).
/// </summary>
public enum Int8Weights { S7, S8, U8 }

public static partial class Int8
{
    /// <summary>The quantized tensors' calibrated ranges, by name (for the log and the tests).</summary>
    public sealed record Range(string Tensor, float Low, float High, float Scale, byte ZeroPoint);

    /// <summary>
    /// The QDQ model of <paramref name="fp32"/> (a graph with BatchNorm folded, as <see cref="OnnxExport.Build"/> writes
    /// it at opset 13 or later), activation ranges from <paramref name="calibration"/> (normalized NCHW batches).
    /// </summary>
    public static (ModelProto Model, IReadOnlyList<Range> Ranges) Quantize(ModelProto fp32, Func<IEnumerable<Tensor>> calibration, Int8Options? options = null)
    {
        options ??= new Int8Options();
        if (fp32.OpsetImport.FirstOrDefault(o => o.Domain == "")?.Version is not long opset || opset < 13) throw NeedsOpset13();
        var graph = fp32.Graph;
        if (graph.Node.Any(n => n.OpType == "BatchNormalization")) throw NeedsFolded();
        var names = Activations(graph);
        var ranges = Calibrate(fp32, names, calibration, options);
        var model = fp32.Clone();
        Rewrite(model.Graph, ranges, options.Weights);
        model.DocString += " int8 (QDQ: per-channel symmetric int8 weights, uint8 activations calibrated at the " +
                           $"{options.Percentile.ToString(System.Globalization.CultureInfo.InvariantCulture)} percentile)";
        model.MetadataProps.Add(new StringStringEntryProto { Key = "keras_mobilenet.quantization", Value = "int8 qdq" });
        return (model, ranges);
    }

    /// <summary>
    /// What an int8 export needs of <paramref name="options"/> (opset 13 or later, BatchNorm folded), checked before any
    /// checkpoint or calibration image is read; <see cref="Quantize"/> checks the same of the graph it is given.
    /// </summary>
    public static void Check(OnnxOptions options)
    {
        if (options.Opset < 13) throw NeedsOpset13();
        if (!options.FoldBatchNorm) throw NeedsFolded();
    }

    static UserError NeedsOpset13() => new("--int8 needs --opset 13 or later (per-channel DequantizeLinear)", 2);
    static UserError NeedsFolded() => new("--int8 quantizes the folded graph: drop --keep-batchnorm", 2);

    /// <summary>Writes the int8 model of <paramref name="network"/> to <paramref name="path"/> (replaced whole, or left as it was).</summary>
    public static IReadOnlyList<Range> Write(string path, Runs.ModelCard card, nn.Module network, OnnxOptions options, Func<IEnumerable<Tensor>> calibration,
        Int8Options? int8 = null)
    {
        var (model, ranges) = Quantize(OnnxExport.Build(card, network, options.Validated()), calibration, int8);
        AtomicFile.Write(path, tmp => { using var f = File.Create(tmp); model.WriteTo(f); });
        return ranges;
    }

    /// <summary>The activations to quantize, in graph order: each Conv's data input, both inputs and the output of
    /// each Add, and the pooling's input (then the last convolution fuses too).</summary>
    static List<string> Activations(GraphProto graph)
    {
        var names = new List<string>();
        void Add(string n) { if (!names.Contains(n)) names.Add(n); }
        foreach (var node in graph.Node)
            switch (node.OpType)
            {
                case "Conv": Add(node.Input[0]); break;
                case "Add": Add(node.Input[0]); Add(node.Input[1]); Add(node.Output[0]); break;
                case "GlobalAveragePool": Add(node.Input[0]); break;
            }
        return names;
    }

    static List<Range> Calibrate(ModelProto fp32, List<string> names, Func<IEnumerable<Tensor>> calibration, Int8Options o)
    {
        var probe = fp32.Clone();
        var outputs = probe.Graph.Output.Select(v => v.Name).ToHashSet();
        foreach (var n in names.Where(n => !outputs.Contains(n) && probe.Graph.Input.All(i => i.Name != n)))
            probe.Graph.Output.Add(new ValueInfoProto { Name = n });
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = get_num_threads() };
        using var session = new InferenceSession(probe.ToByteArray(), options);
        var wanted = names.Where(n => n != OnnxExport.Input).ToArray();
        // Two passes: the extent of each tensor, then its histogram over that extent.
        var (low, high) = (names.ToDictionary(n => n, _ => float.MaxValue), names.ToDictionary(n => n, _ => float.MinValue));
        var hist = names.ToDictionary(n => n, _ => new double[o.Bins]);
        int images = 0;
        for (int pass = 0; pass < 2; pass++)
            foreach (var batch in calibration())
                using (batch)
                {
                    if (pass == 0) images += (int)batch.shape[0];
                    foreach (var (name, values) in Run(session, batch, wanted))
                        using (values)
                        {
                            if (!low.ContainsKey(name)) continue; // the input, when it stays float
                            if (pass == 0)
                            {
                                low[name] = Math.Min(low[name], values.min().item<float>());
                                high[name] = Math.Max(high[name], values.max().item<float>());
                            }
                            else if (high[name] > low[name])
                            {
                                using var scope = NewDisposeScope();
                                var bucket = ((values - low[name]) * (o.Bins / (double)(high[name] - low[name]))).floor().clamp(0, o.Bins - 1).to(ScalarType.Int64);
                                var counts = bucket.flatten().bincount(null, o.Bins).to(ScalarType.Float64).data<double>().ToArray();
                                for (int i = 0; i < counts.Length; i++) hist[name][i] += counts[i];
                            }
                        }
                }
        if (images == 0) throw new UserError("no calibration images");
        return names.Select(n => Clipped(n, low[n], high[n], hist[n], o.Percentile)).ToList();
    }

    /// <summary>The graph input (a copy of the batch) and the wanted intermediate tensors, as float tensors.</summary>
    static IEnumerable<(string, Tensor)> Run(InferenceSession session, Tensor batch, string[] wanted)
    {
        using var x = batch.to(ScalarType.Float32, CPU).contiguous();
        var shape = x.shape;
        var input = new DenseTensor<float>(x.data<float>().ToArray(), [.. shape.Select(d => (int)d)]);
        yield return (OnnxExport.Input, x.clone());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.Input, input)], wanted);
        foreach (var r in results)
        {
            var t = r.AsTensor<float>();
            yield return (r.Name, tensor(t.ToArray(), [.. t.Dimensions.ToArray().Select(d => (long)d)]));
        }
    }

    /// <summary>The range [low, high] with <paramref name="percentile"/> percent of the values at or inside it on each side,
    /// widened to hold 0 (so 0, ReLU's floor and the zero padding, is exact), as uint8 scale and zero point.</summary>
    internal static Range Clipped(string name, float min, float max, double[] hist, double percentile)
    {
        double total = hist.Sum(), tail = total * (100 - percentile) / 100, width = (max - min) / (double)hist.Length;
        double lo = min, hi = max;
        if (total > 0)
        {
            double seen = 0;
            for (int i = 0; i < hist.Length; i++) { seen += hist[i]; if (seen > tail) { lo = min + i * width; break; } }
            seen = 0;
            for (int i = hist.Length - 1; i >= 0; i--) { seen += hist[i]; if (seen > tail) { hi = min + (i + 1) * width; break; } }
        }
        float l = (float)Math.Min(lo, 0), h = (float)Math.Max(hi, 0);
        float scale = h > l ? (h - l) / 255f : 1f;
        byte zero = (byte)Math.Clamp(Math.Round(-l / scale), 0, 255);
        return new Range(name, l, h, scale, zero);
    }

    /// <summary>Inserts QuantizeLinear/DequantizeLinear after each calibrated activation and in front of each Conv's weights and bias.</summary>
    static void Rewrite(GraphProto graph, IReadOnlyList<Range> ranges, Int8Weights weights)
    {
        var init = graph.Initializer.ToDictionary(t => t.Name);
        var byName = ranges.ToDictionary(r => r.Tensor);
        var nodes = graph.Node.ToList();
        graph.Node.Clear();
        void Pair(string t)
        {
            var r = byName[t];
            graph.Initializer.Add(Scalar($"{t}_scale", r.Scale));
            graph.Initializer.Add(new TensorProto { Name = $"{t}_zero", DataType = (int)DataType.Uint8, RawData = ByteString.CopyFrom(r.ZeroPoint) });
            graph.Node.Add(Node("QuantizeLinear", [t, $"{t}_scale", $"{t}_zero"], $"{t}_q"));
            graph.Node.Add(Node("DequantizeLinear", [$"{t}_q", $"{t}_scale", $"{t}_zero"], $"{t}_dq"));
        }
        if (byName.ContainsKey(OnnxExport.Input)) Pair(OnnxExport.Input);
        foreach (var node in nodes)
        {
            bool quantizes = node.OpType is "Conv" or "Add" or "GlobalAveragePool";
            if (node.OpType == "Conv") QuantizeWeights(graph, init, node, byName[node.Input[0]].Scale, weights);
            if (quantizes)
                for (int i = 0; i < node.Input.Count; i++)
                    if (byName.ContainsKey(node.Input[i])) node.Input[i] = $"{node.Input[i]}_dq";
            graph.Node.Add(node);
            foreach (var output in node.Output.Where(byName.ContainsKey)) Pair(output);
        }
    }
}
