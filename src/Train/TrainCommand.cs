using System.CommandLine;
using System.Globalization;
using Keras.MobileNet.Training;

namespace Keras.MobileNet.Cli;

/// <summary>No verb = train, with the notebook's recipe as defaults.</summary>
public static class TrainCommand
{
    static Option<T> Opt<T>(string name, string description, T defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };

    public static void Configure(Command root)
    {
        var d = new TrainOptions();
        var width = Opt("--width", "Width multiplier(s): 0.75, or 1,0.75,0.5,0.25 to train them one after another", "1.0");
        var arch = Opt("--arch", "paper (torchvision/Keras) or notebook (the reference notebook's variant)", d.Arch);
        var dataset = Opt("--dataset", "imagenette (downloaded) or folder (ROOT/{train,val}/<class>/*)", d.Dataset);
        var size = Opt("--size", "Imagenette size: full, 320 or 160", d.Size);
        var data = Opt("--data", "Data folder (Imagenette is downloaded into it) or the image-folder root", d.Data);
        var baseUrl = Opt<string?>("--base-url", $"Mirror for the Imagenette archives (or ${Data.Imagenette.BaseUrlVariable})", null);
        var imageSize = Opt("--image-size", "Crop size; the resize sizes scale with it (224: 256/296/384, val 256)", d.ImageSize);
        var epochs = Opt("--epochs", "Epochs", d.Epochs);
        var batch = Opt("--batch-size", "Batch size", d.BatchSize);
        var lr = Opt("--lr", "AdamW learning rate", d.Lr);
        var minLr = Opt<double?>("--min-lr", "Cosine floor (default lr/100)", null);
        var wd = Opt("--weight-decay", "AdamW weight decay (the notebook: 0)", d.WeightDecay);
        var ls = Opt("--label-smoothing", "Cross-entropy label smoothing", d.LabelSmoothing);
        var schedule = Opt("--schedule", "epoch (CosineAnnealingLR stepped per epoch) or step (per-step cosine with warm-up)", d.Schedule);
        var warmup = Opt("--warmup-epochs", "Warm-up epochs for --schedule step", d.WarmupEpochs);
        var patience = Opt("--early-stopping", "Stop after N epochs without val_accuracy gain (0 = off)", d.EarlyStoppingPatience);
        var seed = Opt("--seed", "Seed of data order, augmentation, init and dropout", d.Seed);
        var seeds = Opt<string?>("--seeds", "Seeds of a sweep: 0,1,2 trains every width with each (runs <out>/<arch>-w<width>-s<seed>)", null);
        var taskIndex = Opt<int?>("--task-index", "Train only this cell of the width x seed grid (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX when set)", null);
        var device = Opt("--device", "auto, cpu or cuda", d.Device);
        var precision = App.PrecisionOption();
        var memoryFormat = App.MemoryFormatOption();
        var workers = Opt("--workers", "Threads preparing batches", d.Workers);
        var inMemory = Opt("--in-memory", "Decode every image once and keep it (true) or stream from disk (false)", d.InMemory);
        var outDir = Opt<string?>("--out", "Run folder (default reports/<time>-<arch>-w<width>), or a sweep's folder of runs", null);
        var resume = Opt("--resume", "Continue the run in --out from its last completed epoch", false);
        var tb = Opt("--tensorboard", "Write TensorBoard event files", d.TensorBoard);
        var dropout = Opt<double?>("--dropout", "Classifier dropout (paper: 0.2, notebook: 0)", null);
        var unfreezeEpoch = Opt<int?>("--unfreeze-epoch", "Fine-tuning: features frozen before this epoch (only the head trains), then unfrozen", null);
        var unfreezeFrom = Opt("--unfreeze-from", "Fine-tuning phase 2 trains features.K on (0 stem, 1-17 blocks, 18 last conv)", 0);
        var bnMode = Opt("--bn-mode", "Fine-tuning phase 2: BatchNorm frozen (inference mode) or train", "frozen");
        var fineTuneLr = Opt<double?>("--fine-tune-lr", "Fine-tuning phase 2's learning rate (default lr/10), own cosine", null);
        var weights = Opt<string?>("--weights", "Start from a .safetensors/.pth state dict (torchvision names) or imagenet1k-v1|imagenet1k-v2", null);
        var estimateOnly = Opt("--estimate-only", "Time a few steps of each width, print how long the run would take, and stop (no download)", false);
        var throttle = Opt("--throttle-ms", "Sleep after each batch (for interruption tests)", 0);
        throttle.Hidden = true;
        var options = new Option[] { width, arch, dataset, size, data, baseUrl, imageSize, epochs, batch, lr, minLr, wd, ls, schedule,
            warmup, patience, seed, seeds, taskIndex, device, precision, memoryFormat, workers, inMemory, outDir, resume, tb, dropout, weights, unfreezeEpoch, unfreezeFrom, bnMode, fineTuneLr, estimateOnly, throttle };
        foreach (var o in options) root.Options.Add(o);

        Read = p => new TrainOptions
            {
                Widths = ParseWidths(p.GetValue(width)!), Arch = p.GetValue(arch)!, Dataset = p.GetValue(dataset)!, Size = p.GetValue(size)!,
                Data = p.GetValue(data)!, BaseUrl = p.GetValue(baseUrl), ImageSize = p.GetValue(imageSize), Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batch), Lr = p.GetValue(lr), MinLr = p.GetValue(minLr), WeightDecay = p.GetValue(wd),
                LabelSmoothing = p.GetValue(ls), Schedule = p.GetValue(schedule)!, WarmupEpochs = p.GetValue(warmup),
                EarlyStoppingPatience = p.GetValue(patience), Seed = p.GetValue(seed),
                Seeds = p.GetValue(seeds) is string ss ? ParseSeeds(ss) : null, TaskIndex = p.GetValue(taskIndex), Device = p.GetValue(device)!,
                Precision = p.GetValue(precision), MemoryFormat = p.GetValue(memoryFormat),
                Workers = p.GetValue(workers), InMemory = p.GetValue(inMemory), Out = p.GetValue(outDir), Resume = p.GetValue(resume),
                TensorBoard = p.GetValue(tb), Dropout = p.GetValue(dropout), Weights = p.GetValue(weights), UnfreezeEpoch = p.GetValue(unfreezeEpoch), UnfreezeFrom = p.GetValue(unfreezeFrom),
                BnMode = p.GetValue(bnMode)!, FineTuneLr = p.GetValue(fineTuneLr), ThrottleMs = p.GetValue(throttle),
                EstimateOnly = p.GetValue(estimateOnly), Args = p.Tokens.Select(t => t.Value).ToArray(),
            };
        Func<ParseResult, int> action = p => App.Guard(p, () =>
        {
            var opts = Read(p);
            var results = Runner.TrainAll(opts, App.Console2, Console.WriteLine); // plain lines: a suggested command must copy whole
            if (opts.EstimateOnly) return 0;
            // The run is complete and saved; a figure that cannot be drawn is reported, not a failed training.
            try { ReportsHook?.Invoke(results); }
            catch (Exception e) when (e is not OutOfMemoryException) { Console.Error.WriteLine($"warning: figures not drawn: {e.Message}"); }
            return results.Any(r => r.Failed) ? 1 : 0;
        });
        root.SetAction(action);
    }

    /// <summary>The training options of a parsed command line (the root command's).</summary>
    public static Func<ParseResult, TrainOptions> Read { get; private set; } = _ => throw new InvalidOperationException("TrainCommand.Configure first");

    /// <summary>Set by the plotting side: draws figures after a run or sweep.</summary>
    public static Action<IReadOnlyList<RunResult>>? ReportsHook { get; set; }

    public static long[] ParseSeeds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--seeds needs a value");
        return parts.Select(s => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v : throw new ArgumentException($"--seeds must be whole numbers such as 0,1,2, not '{s}'")).ToArray();
    }

    public static double[] ParseWidths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--width needs a value");
        return parts.Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
            ? v : throw new ArgumentException($"--width must be numbers > 0, not '{s}'")).ToArray();
    }
}
