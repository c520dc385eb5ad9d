using Microsoft.Extensions.Logging;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Model;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Weights;
using Keras.MobileNet.Training;

namespace Keras.MobileNet.Inference;

public sealed record ClassScore(int Index, string Class, float Probability);

public sealed record Prediction(string Image, IReadOnlyList<ClassScore> Top, float[] Logits);

/// <summary>What predict does around the network, the same for TorchSharp and ONNX Runtime: preprocessing and the top classes.</summary>
public static class Predictions
{
    /// <summary>The val transform of the model card (resize, centre crop, normalise) for each file, as one NCHW batch.</summary>
    public static float[] Preprocess(IReadOnlyList<string> files, ModelCard card)
    {
        var transform = new ValTransform(TransformConfig.For(card.ImageSize, card.Mean, card.Std));
        int per = 3 * card.ImageSize * card.ImageSize;
        var buffer = new float[files.Count * per];
        for (int i = 0; i < files.Count; i++)
        {
            if (!File.Exists(files[i])) throw new UserError($"{files[i]} does not exist");
            RgbImage img;
            try { img = ImageOps.DecodeFile(files[i]); }
            catch (BadImageException e) { throw new UserError($"{e.Path} is not a readable image ({e.Why})"); }
            transform.Finish(transform.Prepare(img), 0, 0, i, buffer.AsSpan(i * per, per));
        }
        return buffer;
    }

    /// <summary>Softmax of each row of logits [files, classes] and its <paramref name="k"/> most probable classes.</summary>
    public static List<Prediction> Top(IReadOnlyList<string> files, float[] logits, ModelCard card, int k)
    {
        int c = card.Classes;
        return files.Select((f, i) =>
        {
            var row = logits.AsSpan(i * c, c).ToArray();
            float max = row.Max();
            var exp = row.Select(v => Math.Exp(v - max)).ToArray();
            double sum = exp.Sum();
            var top = Enumerable.Range(0, c).OrderByDescending(j => exp[j]).Take(Math.Min(k, c))
                .Select(j => new ClassScore(j, card.ClassNames[j], (float)(exp[j] / sum))).ToList();
            return new Prediction(f, top, row);
        }).ToList();
    }

    /// <summary>The top classes of each image through a network on the CPU, in the card's preprocessing.</summary>
    public static List<Prediction> Run(ModelCard card, MobileNetV2 net, IReadOnlyList<string> files, int k,
        Precision precision = Precision.Fp32, MemoryFormat memoryFormat = MemoryFormat.Auto, InferenceEngine engine = InferenceEngine.Auto)
    {
        using var model = new KerasModel(net, CPU, card.Classes, precision, memoryFormat) { Card = card, InferenceEngine = engine };
        using var ort = model.OrtIfInUse(); // one export for every chunk
        return Chunked(files, chunk =>
        {
            using var x = tensor(Preprocess(chunk, card), [chunk.Count, 3, card.ImageSize, card.ImageSize]);
            using var logits = ort?.Forward(x) ?? model.Predict(x);
            return Top(chunk, logits.data<float>().ToArray(), card, k);
        });
    }

    /// <summary>How many images go through the network at once: memory stays bounded however many files are given.</summary>
    public const int ChunkSize = 16;

    /// <summary>Runs <paramref name="predict"/> on the files <see cref="ChunkSize"/> at a time, results in order.</summary>
    public static List<Prediction> Chunked(IReadOnlyList<string> files, Func<IReadOnlyList<string>, List<Prediction>> predict) =>
        files.Chunk(ChunkSize).SelectMany(c => predict(c)).ToList();

    /// <summary>
    /// A network's loss, accuracy, top-5 and confusion on ROOT/val, in its card's classes and preprocessing. The loss is
    /// the training's: cross-entropy with its <paramref name="labelSmoothing"/>, so it equals history.csv's val_loss.
    /// </summary>
    public static Evaluation Evaluate(ModelCard card, MobileNetV2 net, string root, Device device, int batchSize,
        Precision precision = Precision.Fp32, MemoryFormat memoryFormat = MemoryFormat.Auto, ILogger? warn = null, double labelSmoothing = 0,
        InferenceEngine engine = InferenceEngine.Auto)
    {
        var val = TrainingData.Val(root, card.ClassFolders, TransformConfig.For(card.ImageSize, card.Mean, card.Std), batchSize, device,
            new BadImageLog { OnWarning = warn });
        using var model = new KerasModel(net, device, card.Classes, precision, memoryFormat) { Card = card, InferenceEngine = engine };
        return model.Evaluate(val, Losses.CrossEntropy(labelSmoothing));
    }

    /// <summary>
    /// Evaluate for an exported file (float32 or int8) in ONNX Runtime: the same val images, preprocessing
    /// (the card in its metadata), metrics and loss.
    /// </summary>
    public static Evaluation Evaluate(Export.OnnxModel onnx, string root, int batchSize, ILogger? warn = null, double labelSmoothing = 0)
    {
        var card = onnx.Card;
        var val = TrainingData.Val(root, card.ClassFolders, TransformConfig.For(card.ImageSize, card.Mean, card.Std), batchSize, CPU,
            new BadImageLog { OnWarning = warn });
        return MetricFold.Over(val, CPU, card.Classes, 5, Losses.CrossEntropy(labelSmoothing), b => (b.Images, b.Labels), images =>
        {
            var x = images.contiguous();
            int n = (int)x.shape[0];
            return tensor(onnx.Logits(x.data<float>().ToArray(), n, (int)x.shape[2], (int)x.shape[3]), [n, card.Classes]);
        });
    }
}
