using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Keras.MobileNet.Export;

/// <summary>The weights' side of the int8 rewrite, and the graph pieces it adds.</summary>
public static partial class Int8
{
    /// <summary>W as int8 per output channel (scale max|W_c| / 63 or 127, as <paramref name="format"/> and the convolution's kind say), b as int32 at input scale x W_c's scale, each behind a DequantizeLinear.</summary>
    static void QuantizeWeights(GraphProto graph, Dictionary<string, TensorProto> init, NodeProto conv, float inputScale, Int8Weights format)
    {
        var wProto = init[conv.Input[1]];
        var dims = wProto.Dims.ToArray();
        // A depthwise convolution (one input channel per group) does not go through the u8 x s8 GEMM whose 16-bit pair
        // sums saturate: full int8 there even in S7.
        bool depthwise = dims.Length == 4 && dims[1] == 1 && (conv.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1) == dims[0] && dims[0] > 1;
        int weightMax = format == Int8Weights.S7 && !depthwise ? 63 : 127;
        var w = Floats(wProto);
        int channels = (int)dims[0], per = w.Length / channels;
        var q = new sbyte[w.Length];
        var scales = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float max = 0;
            for (int i = 0; i < per; i++) max = Math.Max(max, Math.Abs(w[c * per + i]));
            scales[c] = max > 0 ? max / weightMax : 1f;
            for (int i = 0; i < per; i++) q[c * per + i] = (sbyte)Math.Clamp(Math.Round(w[c * per + i] / scales[c]), -weightMax, weightMax);
        }
        string wName = conv.Input[1];
        graph.Initializer.Remove(wProto);
        bool u8 = format == Int8Weights.U8;
        var raw = u8 ? q.Select(v => (byte)(v + 128)).ToArray() : (byte[])(Array)q;
        var wq = new TensorProto { Name = $"{wName}_q", DataType = (int)(u8 ? DataType.Uint8 : DataType.Int8), RawData = ByteString.CopyFrom(raw) };
        wq.Dims.AddRange(dims);
        graph.Initializer.Add(wq);
        graph.Initializer.Add(Vector($"{wName}_scale", scales));
        if (u8)
        {
            var zp = new TensorProto { Name = $"{wName}_zero", DataType = (int)DataType.Uint8, RawData = ByteString.CopyFrom(Enumerable.Repeat((byte)128, channels).ToArray()) };
            zp.Dims.Add(channels);
            graph.Initializer.Add(zp);
        }
        else graph.Initializer.Add(Zeros($"{wName}_zero", DataType.Int8, channels, 1));
        graph.Node.Add(Node("DequantizeLinear", [$"{wName}_q", $"{wName}_scale", $"{wName}_zero"], $"{wName}_dq", axis: 0));
        conv.Input[1] = $"{wName}_dq";
        if (conv.Input.Count < 3) return;
        var bProto = init[conv.Input[2]];
        var b = Floats(bProto);
        var bq = new int[channels];
        var bScales = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            bScales[c] = inputScale * scales[c];
            bq[c] = (int)Math.Clamp(Math.Round(b[c] / bScales[c]), int.MinValue, int.MaxValue);
        }
        string bName = conv.Input[2];
        graph.Initializer.Remove(bProto);
        var bqProto = new TensorProto { Name = $"{bName}_q", DataType = (int)DataType.Int32, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bq.AsSpan())) };
        bqProto.Dims.Add(channels);
        graph.Initializer.Add(bqProto);
        graph.Initializer.Add(Vector($"{bName}_scale", bScales));
        graph.Initializer.Add(Zeros($"{bName}_zero", DataType.Int32, channels, 4));
        graph.Node.Add(Node("DequantizeLinear", [$"{bName}_q", $"{bName}_scale", $"{bName}_zero"], $"{bName}_dq", axis: 0));
        conv.Input[2] = $"{bName}_dq";
    }

    static float[] Floats(TensorProto t) =>
        t.DataType == (int)DataType.Float && !t.RawData.IsEmpty ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray()
            : throw new InvalidOperationException($"initializer {t.Name} is not raw float32");

    static TensorProto Scalar(string name, float v) => new() { Name = name, DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(BitConverter.GetBytes(v)) };

    static TensorProto Vector(string name, float[] v)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())) };
        t.Dims.Add(v.Length);
        return t;
    }

    static TensorProto Zeros(string name, DataType type, int n, int bytesEach)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(new byte[n * bytesEach]) };
        t.Dims.Add(n);
        return t;
    }

    static NodeProto Node(string op, string[] inputs, string output, long? axis = null)
    {
        var n = new NodeProto { OpType = op, Name = $"{output}_{op}" };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        if (axis is long a) n.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = a });
        return n;
    }
}
