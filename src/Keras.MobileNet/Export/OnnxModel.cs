using System.Text.Json;
using Keras.MobileNet.Backend;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Export;

/// <summary>An exported MobileNetV2 run by ONNX Runtime, with the model card its metadata carries.</summary>
public sealed class OnnxModel : IDisposable
{
    readonly InferenceSession session;
    public ModelCard Card { get; }

    OnnxModel(InferenceSession session, ModelCard card) => (this.session, Card) = (session, card);

    public static OnnxModel Load(string path, int threads = 0)
    {
        if (!File.Exists(path)) throw new UserError($"{path} does not exist");
        InferenceSession session;
        try
        {
            using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            session = new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e) { throw new UserError($"{path} is not a model ONNX Runtime can load ({e.Message.Split('\n')[0]})"); }
        if (!session.ModelMetadata.CustomMetadataMap.TryGetValue("keras_mobilenet.model_card", out var json))
        {
            session.Dispose();
            throw new UserError($"{path} has no keras_mobilenet.model_card in its metadata: export it with `export --onnx`");
        }
        try
        {
            var card = JsonSerializer.Deserialize<ModelCard>(json, Files.Json) ?? throw new JsonException("empty");
            if (card.Problem() is string p) throw new JsonException(p);
            if (Mismatch(session, card) is string why)
            {
                session.Dispose();
                throw new UserError($"{path} is not a classifier of its model card: {why}");
            }
            return new OnnxModel(session, card);
        }
        catch (JsonException e)
        {
            session.Dispose();
            throw new UserError($"{path}: the model card in its metadata is not readable ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>What keeps the graph from being the card's network: its input must be NCHW with 3 channels, its output [N, classes].</summary>
    static string? Mismatch(InferenceSession session, ModelCard card)
    {
        if (!session.InputMetadata.TryGetValue(OnnxExport.Input, out var input)) return $"it has no input '{OnnxExport.Input}'";
        if (!session.OutputMetadata.TryGetValue(OnnxExport.Output, out var output)) return $"it has no output '{OnnxExport.Output}'";
        var (i, o) = (input.Dimensions, output.Dimensions);
        if (i.Length != 4 || i[1] != 3 || input.ElementType != typeof(float)) return $"input '{OnnxExport.Input}' is not float [N, 3, H, W]";
        if (o.Length != 2 || o[1] != card.Classes || output.ElementType != typeof(float))
            return $"output '{OnnxExport.Output}' is [{string.Join(", ", o)}], not float [N, {card.Classes}]";
        return null;
    }

    /// <summary>Logits [n, classes] for n preprocessed images in NCHW float32.</summary>
    public float[] Logits(float[] images, int n, int height, int width)
    {
        var input = new DenseTensor<float>(images, [n, 3, height, width]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.Input, input)]);
        return results.First(r => r.Name == OnnxExport.Output).AsEnumerable<float>().ToArray();
    }

    public void Dispose() => session.Dispose();
}
