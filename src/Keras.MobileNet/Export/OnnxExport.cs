using System.Globalization;
using System.Reflection;
using System.Text.Json;
using Google.Protobuf;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Onnx;
using static TorchSharp.torch;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Export;

/// <summary>How to write the ONNX file: opset (11 or later: ReLU6 is Clip with min/max inputs), a fixed batch or a
/// dynamic one, and BatchNorm folded into the convolutions or kept as BatchNormalization nodes.</summary>
public sealed record OnnxOptions(int Opset = 17, int? Batch = null, bool FoldBatchNorm = true)
{
    /// <summary>The newest opset the ONNX Runtime this project ships can load (a file it cannot load helps nobody).</summary>
    public const int MaxOpset = 21;

    public OnnxOptions Validated()
    {
        if (Opset is < 11 or > MaxOpset)
            throw new UserError($"--opset must be 11 to {MaxOpset} (11: ReLU6 is exported as Clip with min/max inputs; {MaxOpset}: the newest the bundled ONNX Runtime loads), not {Opset}", 2);
        if (Batch is < 1 or > 65536) throw new UserError($"--batch must be dynamic or 1 to 65536, not {Batch}", 2);
        return this;
    }
}

/// <summary>
/// Writes MobileNetV2 as an ONNX graph from its spec and its weights (the torchvision key layout), with what a
/// deployment needs to preprocess in the model's metadata. Height and width are free dimensions: the network is
/// convolutional up to a global average pool.
/// </summary>
public static class OnnxExport
{
    public const string Input = "input", Output = "logits";

    public static void Write(string path, ModelCard card, nn.Module network, OnnxOptions options)
    {
        var model = Build(card, network, options.Validated());
        AtomicFile.Write(path, tmp => { using var f = File.Create(tmp); model.WriteTo(f); });
    }

    public static ModelProto Build(ModelCard card, nn.Module network, OnnxOptions options)
    {
        var spec = card.Spec();
        var state = network.state_dict();
        var graph = new GraphProto { Name = $"mobilenet_v2_{card.Arch}_w{card.Width.ToString(CultureInfo.InvariantCulture)}" };
        var g = new GraphWriter(graph, state, options.FoldBatchNorm);

        graph.Input.Add(Value(Input, options.Batch, 3, "height", "width"));
        string x = Features(g, spec, Input, FeatureChildren(spec));
        x = g.Node("GlobalAveragePool", [x]);
        x = g.Node("Flatten", [x], Attr("axis", 1));
        // Dropout is the identity at inference; the classifier is Linear: x W^T + b.
        g.Node("Gemm", [x, g.Weight("classifier.1.weight"), g.Weight("classifier.1.bias")], [Output], Attr("transB", 1));
        graph.Output.Add(Value(Output, options.Batch, card.Classes));

        var model = Model(graph, options.Opset);
        model.DocString = $"MobileNetV2 ({card.Arch}, width {card.Width.ToString(CultureInfo.InvariantCulture)}, {card.Classes} classes)";
        foreach (var (key, value) in Metadata(card)) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    /// <summary>The children of <c>features</c>: the stem, one per block, the last 1x1 convolution.</summary>
    public static int FeatureChildren(NetworkSpec spec) => spec.Blocks.Count + 2;

    /// <summary>Writes <c>features</c>' children [0, <paramref name="children"/>) on <paramref name="x"/>; returns the output's name.</summary>
    static string Features(GraphWriter g, NetworkSpec spec, string x, int children)
    {
        if (children > 0) x = g.Unit(x, TorchvisionLayout.Stem(spec));
        for (int i = 0; i < spec.Blocks.Count && i + 1 < children; i++)
        {
            var b = spec.Blocks[i];
            string y = x;
            foreach (var k in TorchvisionLayout.Units(b, $"{TorchvisionLayout.Block(i)}.conv")) y = g.Unit(y, k); // # pw, # dw, # pw-linear
            x = b.Residual ? g.Node("Add", [x, y]) : y;
        }
        if (children == FeatureChildren(spec)) x = g.Unit(x, TorchvisionLayout.Last(spec));
        return x;
    }

    /// <summary>The name of a prefix graph's output: the activations after its last child.</summary>
    public const string PrefixOutput = "features";

    /// <summary>
    /// The first <paramref name="children"/> children of <c>features</c> (1 = the stem, 19 = all of them) as a graph
    /// from <see cref="Input"/> to <see cref="PrefixOutput"/> (BatchNorm folded: inference mode), for fine-tuning's
    /// frozen part.
    /// </summary>
    public static ModelProto BuildPrefix(ModelCard card, nn.Module network, int children)
    {
        var spec = card.Spec();
        if (children < 1 || children > FeatureChildren(spec))
            throw new ArgumentOutOfRangeException(nameof(children), $"a prefix has 1 to {FeatureChildren(spec)} children of features, not {children}");
        var graph = new GraphProto { Name = $"mobilenet_v2_features_0_{children - 1}" };
        var g = new GraphWriter(graph, network.state_dict(), fold: true);
        graph.Input.Add(Value(Input, null, 3, "height", "width"));
        string x = Features(g, spec, Input, children);
        g.Node("Identity", [x], [PrefixOutput]);
        var outShape = new ValueInfoProto { Name = PrefixOutput, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } };
        graph.Output.Add(outShape);
        return Model(graph, new OnnxOptions().Opset);
    }

    /// <summary>A model of <paramref name="graph"/> at <paramref name="opset"/>, as this program writes them.</summary>
    static ModelProto Model(GraphProto graph, int opset)
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "Keras.MobileNet", ProducerVersion = Version, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }

    public static string Version =>
        typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";

    /// <summary>The model card in the ONNX metadata: all a program needs to feed the network (JSON values).</summary>
    public static IEnumerable<(string, string)> Metadata(ModelCard card)
    {
        yield return ("keras_mobilenet.model_card", JsonSerializer.Serialize(card, Files.Json));
        yield return ("class_names", JsonSerializer.Serialize(card.ClassNames));
        yield return ("image_size", card.ImageSize.ToString(CultureInfo.InvariantCulture));
        yield return ("mean", JsonSerializer.Serialize(card.Mean));
        yield return ("std", JsonSerializer.Serialize(card.Std));
        yield return ("preprocessing", $"RGB; resize the shorter side to {TransformConfig.For(card.ImageSize).ValResize} (bilinear, antialiased), " +
                                       $"centre crop {card.ImageSize}, x / 255, (x - mean) / std per channel, NCHW float32");
    }

    static ValueInfoProto Value(string name, int? batch, params object[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch is int n ? new TensorShapeProto.Types.Dimension { DimValue = n } : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        foreach (var d in dims)
            shape.Dim.Add(d is int v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = (string)d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    static AttributeProto Attr(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    static AttributeProto Attr(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    static AttributeProto Attr(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>Adds nodes and initializers to one graph, naming values as it goes.</summary>
    sealed class GraphWriter(GraphProto graph, Dictionary<string, Tensor> state, bool fold)
    {
        int next;
        string? clipMin, clipMax;

        public string Node(string op, string[] inputs, params AttributeProto[] attributes) =>
            Node(op, inputs, [$"{op.ToLowerInvariant()}_{next++}"], attributes);

        public string Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = $"{op}_{next++}" };
            node.Input.AddRange(inputs);
            node.Output.AddRange(outputs);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return outputs[0];
        }

        public string Weight(string key) => Initializer(key, Get(key));

        Tensor Get(string key) => state.TryGetValue(key, out var t) ? t
            : throw new UserError($"the network has no tensor '{key}' to export");

        string Initializer(string name, Tensor t)
        {
            using var f = t.detach().to(ScalarType.Float32).cpu().contiguous();
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            proto.Dims.AddRange(f.shape);
            proto.RawData = ByteString.CopyFrom(f.bytes); // little-endian float32, as ONNX stores raw data
            graph.Initializer.Add(proto);
            return name;
        }

        /// <summary>Conv2d -> BatchNorm (folded into the conv, or a BatchNormalization node) -> ReLU6 (Clip) / ReLU / none.</summary>
        public string Unit(string x, UnitKeys k) => Unit(x, k.Unit, k.Conv, k.Norm);

        public string Unit(string x, ConvUnit u, string conv, string bn)
        {
            var attrs = new[]
            {
                Attr("kernel_shape", [u.Kernel, u.Kernel]), Attr("strides", [u.Stride, u.Stride]),
                Attr("pads", Enumerable.Repeat((long)u.Padding, 4)), Attr("group", u.Groups), Attr("dilations", [1L, 1L]),
            };
            string y;
            if (fold)
            {
                // In float64: scale = gamma / sqrt(var + eps); W' = W scale; b' = (b - mean) scale + beta.
                using var scope = NewDisposeScope();
                var scale = Get($"{bn}.weight").to(ScalarType.Float64) / (Get($"{bn}.running_var").to(ScalarType.Float64) + FrameworkConstants.BatchNormEps).sqrt();
                var w = Get($"{conv}.weight").to(ScalarType.Float64) * scale.reshape(-1, 1, 1, 1);
                var b0 = u.Bias ? Get($"{conv}.bias").to(ScalarType.Float64) : zeros_like(scale);
                var b = (b0 - Get($"{bn}.running_mean").to(ScalarType.Float64)) * scale + Get($"{bn}.bias").to(ScalarType.Float64);
                y = Node("Conv", [x, Initializer($"{conv}.weight", w), Initializer($"{conv}.bias", b)], attrs);
            }
            else
            {
                string[] inputs = u.Bias ? [x, Weight($"{conv}.weight"), Weight($"{conv}.bias")] : [x, Weight($"{conv}.weight")];
                y = Node("Conv", inputs, attrs);
                y = Node("BatchNormalization",
                    [y, Weight($"{bn}.weight"), Weight($"{bn}.bias"), Weight($"{bn}.running_mean"), Weight($"{bn}.running_var")],
                    Attr("epsilon", (float)FrameworkConstants.BatchNormEps));
            }
            return u.Act switch
            {
                Architecture.Activation.ReLU6 => Node("Clip", [y, clipMin ??= Initializer("relu6_min", tensor(0f)), clipMax ??= Initializer("relu6_max", tensor(6f))]),
                Architecture.Activation.ReLU => Node("Relu", [y]),
                _ => y,
            };
        }
    }
}
