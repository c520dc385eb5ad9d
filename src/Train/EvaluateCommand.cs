using System.CommandLine;
using System.Text.Json;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Config;
using Keras.MobileNet.Runs;
using Keras.MobileNet.Training;
using Spectre.Console;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Inference;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

/// <summary>evaluate: top-1, top-5, per-class accuracy, confusion and loss of a run's checkpoint or of torchvision's weights on a val/ folder.</summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var weights = new Option<string?>("--weights") { Description = "imagenet1k-v1 or imagenet1k-v2 instead of --checkpoint: torchvision's ImageNet network on --data, whose class folders are ImageNet classes (or Imagenette's ids)" };
        var data = new Option<string?>("--data") { Description = "Image-folder root with val/ (default: the run's data)" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var device = Words.DeviceOption();
        var checkpoint = Words.CheckpointOption();
        var batch = new Option<int?>("--batch-size") { Description = "Default: the run's batch size" };
        var precision = Words.PrecisionOption();
        var memoryFormat = Words.MemoryFormatOption();
        var engine = Words.InferenceEngineOption();
        var onnx = new Option<string?>("--onnx") { Description = "An exported .onnx file (float32 or int8), run with ONNX Runtime on --data (instead of --checkpoint)" };
        var cmd = new Command("evaluate", "Top-1, top-5, per-class accuracy, confusion matrix and loss of a checkpoint")
            { checkpoint, weights, onnx, data, json, device, batch, precision, memoryFormat, engine };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            if (new[] { p.GetValue(checkpoint), p.GetValue(weights), p.GetValue(onnx) }.Count(v => v is not null) != 1)
                throw new UserError("give one of --checkpoint RUN, --weights imagenet1k-v1|imagenet1k-v2 and --onnx FILE", 2);
            string DataRoot(string option) => p.GetValue(data) ?? throw new UserError($"{option} needs --data ROOT (an image folder with val/<class>/)", 2);
            int BatchSize(int? run) => (p.GetValue(batch) ?? run ?? 64) is var n && n >= 1 ? n : throw new ArgumentException("--batch-size must be at least 1");
            int Report(ModelCard card, Evaluation e)
            {
                if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(ToJson(card, e), Files.Json));
                else Print(card, e);
                return 0;
            }
            if (p.GetValue(onnx) is string file)
            {
                string dataRoot = DataRoot("--onnx");
                int onnxBatch = BatchSize(null);
                using var model = Export.OnnxModel.Load(file);
                return Report(model.Card, Predictions.Evaluate(model, dataRoot, onnxBatch, App.Stderr));
            }
            ModelCard card;
            Model.MobileNetV2 net;
            TrainOptions? run = null;
            string root;
            if (p.GetValue(weights) is string w)
            {
                root = DataRoot("--weights");
                (card, net) = Pretrained.BuildFor(w, ImageFolder.Scan(root, "val").Classes, "data", Environment.GetEnvironmentVariable(Pretrained.BaseUrlVariable), log: App.Stderr);
            }
            else
            {
                (card, net) = RunReader.LoadCheckpoint(p.GetValue(checkpoint)!);
                run = RunReader.OptionsOf(p.GetValue(checkpoint)!);
                root = p.GetValue(data) ?? (run is null ? throw new UserError("no --data given and the checkpoint's folder has no options.json")
                    : TrainingData.Root(run));
            }
            int batchSize = BatchSize(run?.BatchSize);
            var dev = TorchRuntime.ResolveDevice(p.GetValue(device));
            // The run's label smoothing: the loss printed is the val_loss of history.csv for this checkpoint's epoch.
            var result = Predictions.Evaluate(card, net, root, dev, batchSize, p.GetValue(precision), p.GetValue(memoryFormat), App.Stderr,
                run?.LabelSmoothing ?? 0, p.GetValue(engine));
            return Report(card, result);
        }));
        return cmd;
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
