using System.CommandLine;
using System.Text.Json;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Training;
using static TorchSharp.torch;

namespace Keras.MobileNet.Cli;

public static class PredictCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run folder or .safetensors (next to its model.json)", Required = true };
        var images = new Argument<string[]>("images") { Description = "Image files", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "How many classes to show", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print JSON (with raw logits)" };
        var cmd = new Command("predict", "Class probabilities for images") { checkpoint, images, top, json };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            int k = p.GetValue(top);
            if (k < 1) throw new ArgumentException("--top must be at least 1");
            var (card, net) = Runner.LoadCheckpoint(p.GetValue(checkpoint)!);
            var transform = new ValTransform(TransformConfig.For(card.ImageSize, card.Mean, card.Std));
            var files = p.GetValue(images)!;
            int s = card.ImageSize;
            var buffer = new float[files.Length * 3 * s * s];
            for (int i = 0; i < files.Length; i++)
            {
                if (!File.Exists(files[i])) throw new UserError($"{files[i]} does not exist");
                RgbImage img;
                try { img = ImageOps.DecodeFile(files[i]); }
                catch (BadImageException e) { throw new UserError($"{e.Path} is not a readable image ({e.Why})"); }
                transform.Finish(transform.Prepare(img), 0, 0, i, buffer.AsSpan(i * 3 * s * s, 3 * s * s));
            }
            using var model = new KerasModel(net, CPU, card.Classes);
            using var x = tensor(buffer, [files.Length, 3, s, s]);
            using var logits = model.Predict(x);
            using var probs = logits.softmax(1);
            var l = logits.data<float>().ToArray();
            var pr = probs.data<float>().ToArray();
            var results = files.Select((f, i) =>
            {
                var row = Enumerable.Range(0, card.Classes).OrderByDescending(c => pr[i * card.Classes + c]).Take(Math.Min(k, card.Classes));
                return new
                {
                    image = f,
                    top = row.Select(c => new { index = c, @class = card.ClassNames[c], probability = pr[i * card.Classes + c] }).ToArray(),
                    logits = l.Skip(i * card.Classes).Take(card.Classes).ToArray(),
                };
            }).ToList();
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(results, Files.Json));
            else
                foreach (var r in results)
                    Console.WriteLine($"{r.image}: " + string.Join(", ", r.top.Select(t => $"{t.@class} {t.probability:P1}")));
            return 0;
        }));
        return cmd;
    }
}
