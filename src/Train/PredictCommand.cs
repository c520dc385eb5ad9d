using System.CommandLine;
using System.Text.Json;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Export;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Keras.MobileNet.Inference;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

/// <summary>predict: the most probable classes of image files, through a checkpoint, an exported ONNX file or torchvision's weights.</summary>
public static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = Words.CheckpointOption();
        var onnx = new Option<string?>("--onnx") { Description = "An exported .onnx file, run with ONNX Runtime (instead of --checkpoint)" };
        var weights = new Option<string?>("--weights") { Description = "imagenet1k-v1 or imagenet1k-v2: torchvision's ImageNet network (instead of --checkpoint)" };
        var data = new Option<string>("--data") { Description = "Where --weights are downloaded (DATA/weights)", DefaultValueFactory = _ => "data" };
        var images = new Argument<string[]>("images") { Description = "Image files", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "How many classes to show", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print JSON (with raw logits)" };
        var precision = Words.PrecisionOption();
        var memoryFormat = Words.MemoryFormatOption();
        var engine = Words.InferenceEngineOption();
        var cmd = new Command("predict", "Class probabilities for images") { checkpoint, onnx, weights, data, images, top, json, precision, memoryFormat, engine };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            int k = p.GetValue(top);
            if (k < 1) throw new UserError("--top must be at least 1", 2);
            if (new[] { p.GetValue(checkpoint), p.GetValue(onnx), p.GetValue(weights) }.Count(v => v is not null) != 1)
                throw new UserError("give one of --checkpoint RUN, --onnx FILE and --weights imagenet1k-v1|imagenet1k-v2", 2);
            var files = p.GetValue(images)!;
            List<Prediction> results;
            if (p.GetValue(onnx) is string file)
            {
                using var model = OnnxModel.Load(file);
                results = Predictions.Chunked(files, chunk =>
                    Predictions.Top(chunk, model.Logits(Predictions.Preprocess(chunk, model.Card), chunk.Count, model.Card.ImageSize, model.Card.ImageSize), model.Card, k));
            }
            else
            {
                var (card, net) = p.GetValue(weights) is string w
                    ? Pretrained.Build(w, p.GetValue(data)!, Environment.GetEnvironmentVariable(Pretrained.BaseUrlVariable), log: App.Stderr)
                    : RunReader.LoadCheckpoint(p.GetValue(checkpoint)!);
                results = Predictions.Run(card, net, files, k, p.GetValue(precision), p.GetValue(memoryFormat), p.GetValue(engine));
            }
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(results.Select(r => new
                {
                    image = r.Image, top = r.Top.Select(t => new { index = t.Index, @class = t.Class, probability = t.Probability }), logits = r.Logits,
                }), Files.Json));
            else
                foreach (var r in results)
                    Console.WriteLine(App.Printable($"{r.Image}: " + string.Join(", ", r.Top.Select(t => $"{t.Class} {t.Probability:P1}"))));
            return 0;
        }));
        return cmd;
    }
}
