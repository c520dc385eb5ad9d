using System.CommandLine;
using System.Text.Json;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Training;
using Spectre.Console;

namespace Keras.MobileNet.Cli;

public static class EvaluateCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Run folder or .safetensors (next to its model.json)" };
        var weights = new Option<string?>("--weights") { Description = "imagenet1k-v1 or imagenet1k-v2 instead of --checkpoint: torchvision's ImageNet network on --data, whose class folders are ImageNet classes (or Imagenette's ids)" };
        var data = new Option<string?>("--data") { Description = "Image-folder root with val/ (default: the run's data)" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "auto" };
        var batch = new Option<int?>("--batch-size") { Description = "Default: the run's batch size" };
        var precision = App.PrecisionOption();
        var memoryFormat = App.MemoryFormatOption();
        var cmd = new Command("evaluate", "Top-1, top-5, per-class accuracy, confusion matrix and loss of a checkpoint")
            { checkpoint, weights, data, json, device, batch, precision, memoryFormat };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            if ((p.GetValue(checkpoint) is null) == (p.GetValue(weights) is null))
                throw new UserError("give one of --checkpoint RUN and --weights imagenet1k-v1|imagenet1k-v2", 2);
            ModelCard card;
            Model.MobileNetV2 net;
            TrainOptions? run = null;
            string root;
            if (p.GetValue(weights) is string w)
            {
                root = p.GetValue(data) ?? throw new UserError("--weights needs --data ROOT (an image folder with val/<class>/)", 2);
                (card, net) = Pretrained.BuildFor(w, ImageFolder.Scan(root, "val").Classes, "data", log: Console.Error.WriteLine);
            }
            else
            {
                (card, net) = Runner.LoadCheckpoint(p.GetValue(checkpoint)!);
                run = RunOptionsOf(p.GetValue(checkpoint)!);
                root = p.GetValue(data) ?? (run is null ? throw new UserError("no --data given and the checkpoint's folder has no options.json")
                    : run.Dataset == "imagenette" ? Path.Combine(run.Data, Imagenette.Archive(run.Size).Folder) : run.Data);
            }
            int batchSize = p.GetValue(batch) ?? run?.BatchSize ?? 64;
            if (batchSize < 1) throw new ArgumentException("--batch-size must be at least 1");
            var dev = TorchRuntime.ResolveDevice(p.GetValue(device)!);
            var result = Evaluate(card, net, root, dev, batchSize, p.GetValue(precision), p.GetValue(memoryFormat));
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(ToJson(card, result), Files.Json));
            else Print(card, result);
            return 0;
        }));
        return cmd;
    }

    /// <summary>The options a run was trained with (its options.json), if the checkpoint sits in a run folder.</summary>
    static TrainOptions? RunOptionsOf(string checkpoint)
    {
        string dir = Directory.Exists(checkpoint) ? checkpoint : Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        string opts = Path.Combine(dir, "options.json");
        return File.Exists(opts) ? Files.ReadJson<TrainOptions>(opts, t => t.Data is null ? "data is missing" : null) : null;
    }

    public static Evaluation Evaluate(ModelCard card, Model.MobileNetV2 net, string root, TorchSharp.torch.Device device, int batchSize,
        Model.Precision precision = Model.Precision.Fp32, Model.MemoryFormat memoryFormat = Model.MemoryFormat.Auto)
    {
        var val = ImageFolder.Scan(root, "val", card.ClassFolders);
        var ds = InMemoryDataset.Build(val, new ValTransform(TransformConfig.For(card.ImageSize, card.Mean, card.Std)),
            new BadImageLog { OnWarning = Console.Error.WriteLine }, Environment.ProcessorCount);
        using var model = new KerasModel(net, device, card.Classes, precision, memoryFormat);
        return model.Evaluate(new DataLoader(ds, batchSize, false, 0, Environment.ProcessorCount, device));
    }

    static object ToJson(ModelCard card, Evaluation e) => new
    {
        top1 = e.Accuracy, top5 = e.TopK, loss = e.Loss, samples = e.Samples, classes = card.ClassNames,
        per_class_accuracy = e.PerClassAccuracy(),
        confusion = e.ConfusionRows(),
    };

    static void Print(ModelCard card, Evaluation e)
    {
        Console.WriteLine($"samples {e.Samples}  top-1 {e.Accuracy:P2}  top-5 {e.TopK:P2}  loss {e.Loss:F4}");
        var t = new Table().Border(TableBorder.Simple).AddColumn("class").AddColumn(new TableColumn("accuracy").RightAligned());
        foreach (var c in card.ClassNames) t.AddColumn(new TableColumn(Markup.Escape(c.Length > 8 ? c[..8] : c)).RightAligned());
        var per = e.PerClassAccuracy();
        for (int i = 0; i < card.Classes; i++)
            t.AddRow(new[] { Markup.Escape(card.ClassNames[i]), per[i].ToString("P1") }
                .Concat(Enumerable.Range(0, card.Classes).Select(j => e.Confusion[i, j].ToString())).ToArray());
        App.Console2.Write(t);
    }
}
