using System.CommandLine;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using Keras.MobileNet.Training;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;
using Keras.MobileNet.Sweeps;

namespace Keras.MobileNet.Cli;

/// <summary>No verb = train, with the notebook's recipe as defaults.</summary>
public static class TrainCommand
{
    /// <summary>One row of the option table: the option (name, type, default, help, parser) and where its value goes.</summary>
    /// <param name="Defines">The <see cref="TrainOptions"/> field the option sets when that field defines a run (a resume
    /// with another value is refused, <see cref="TrainOptions.RunDefining"/>); null for options that do not.</param>
    sealed record Row(Option Option, Func<ParseResult, TrainOptions, TrainOptions> Apply, string? Defines = null);

    static Row Bind<T>(Option<T> option, Func<TrainOptions, T, TrainOptions> set, string? defines = null) =>
        new(option, (p, o) => set(o, p.GetValue(option)!), defines);

    static Option<T> Opt<T>(string name, string description, T defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };

    /// <summary>Every training option, declared once. Defaults come from <see cref="TrainOptions"/> (dropout's: the spec's).</summary>
    static Row[] Table()
    {
        var d = new TrainOptions();
        return
        [
            Bind(Words.Parsed("--width", "Width multiplier(s): 0.75, or 1,0.75,0.5,0.25 to train them one after another", d.Widths, Words.Widths), (o, v) => o with { Widths = v }, nameof(TrainOptions.Widths)),
            Bind(Words.Choice("--arch", "paper (torchvision/Keras) or notebook (the reference notebook's variant)", d.Arch), (o, v) => o with { Arch = v }, nameof(TrainOptions.Arch)),
            Bind(Words.Choice("--dataset", "imagenette (downloaded) or folder (ROOT/{train,val}/<class>/*)", d.Dataset), (o, v) => o with { Dataset = v }, nameof(TrainOptions.Dataset)),
            Bind(Words.Choice("--size", "Imagenette size", d.Size), (o, v) => o with { Size = v }, nameof(TrainOptions.Size)),
            Bind(Opt("--data", "Data folder (Imagenette is downloaded into it) or the image-folder root", d.Data), (o, v) => o with { Data = v }, nameof(TrainOptions.Data)),
            Bind(Opt<string?>("--base-url", $"Mirror for the Imagenette archives (or ${Imagenette.BaseUrlVariable})", null), (o, v) => o with { BaseUrl = v }),
            Bind(Opt("--image-size", "Crop size; the resize sizes scale with it (224: 256/296/384, val 256)", d.ImageSize), (o, v) => o with { ImageSize = v }, nameof(TrainOptions.ImageSize)),
            Bind(Opt("--epochs", "Epochs", d.Epochs), (o, v) => o with { Epochs = v }, nameof(TrainOptions.Epochs)),
            Bind(Opt("--batch-size", "Batch size", d.BatchSize), (o, v) => o with { BatchSize = v }, nameof(TrainOptions.BatchSize)),
            Bind(Opt("--lr", "AdamW learning rate", d.Lr), (o, v) => o with { Lr = v }, nameof(TrainOptions.Lr)),
            Bind(Opt<double?>("--min-lr", "Cosine floor (default lr/100)", null), (o, v) => o with { MinLr = v }, nameof(TrainOptions.MinLr)),
            Bind(Opt("--weight-decay", "AdamW weight decay (the notebook: 0)", d.WeightDecay), (o, v) => o with { WeightDecay = v }, nameof(TrainOptions.WeightDecay)),
            Bind(Opt("--label-smoothing", "Cross-entropy label smoothing", d.LabelSmoothing), (o, v) => o with { LabelSmoothing = v }, nameof(TrainOptions.LabelSmoothing)),
            Bind(Words.Choice("--schedule", "epoch (CosineAnnealingLR stepped per epoch) or step (per-step cosine with warm-up)", d.Schedule), (o, v) => o with { Schedule = v }, nameof(TrainOptions.Schedule)),
            Bind(Opt("--warmup-epochs", "Warm-up epochs for --schedule step", d.WarmupEpochs), (o, v) => o with { WarmupEpochs = v }, nameof(TrainOptions.WarmupEpochs)),
            Bind(Opt("--early-stopping", "Stop after N epochs without val_accuracy gain (0 = off)", d.EarlyStoppingPatience), (o, v) => o with { EarlyStoppingPatience = v }, nameof(TrainOptions.EarlyStoppingPatience)),
            Bind(Opt("--seed", "Seed of data order, augmentation, init and dropout", d.Seed), (o, v) => o with { Seed = v }, nameof(TrainOptions.Seed)),
            Bind(Words.Parsed<long[]?>("--seeds", "Seeds of a sweep: 0,1,2 trains every width with each (runs <out>/<arch>-w<width>-s<seed>)", null, Words.Seeds),
                (o, v) => o with { Seeds = v is { Length: > 0 } ? v : null }), // absent: System.CommandLine gives an empty array
            Bind(Opt<int?>("--task-index", "Train only this cell of the width x seed grid (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX when set)", null), (o, v) => o with { TaskIndex = v }),
            Bind(Words.DeviceOption(), (o, v) => o with { Device = v }),
            Bind(Words.PrecisionOption(), (o, v) => o with { Precision = v }, nameof(TrainOptions.Precision)),
            Bind(Words.MemoryFormatOption(), (o, v) => o with { MemoryFormat = v }),
            Bind(Words.InferenceEngineOption(), (o, v) => o with { InferenceEngine = v }),
            Bind(Words.Choice("--latency", "What the run measures at its end for the width comparison, at batch 1 in ONNX Runtime on this CPU: fp32, int8 (fp32 and the int8 model of export --int8, calibrated on 256 val images), or none", d.Latency), (o, v) => o with { Latency = v }),
            Bind(Opt("--workers", "Threads preparing batches", d.Workers), (o, v) => o with { Workers = v }),
            Bind(Opt("--in-memory", "Decode every image once and keep it (true) or stream from disk (false)", d.InMemory), (o, v) => o with { InMemory = v }),
            Bind(Words.Choice("--train-cache", "In memory, keep each train image resized once to the three RandomResize sizes (fast) or decoded (least memory); auto: resized when it fits in half the memory available", d.TrainCache), (o, v) => o with { TrainCache = v }),
            Bind(Words.Choice("--augment-on", "Rotate/crop/flip/normalise each sample on the host workers, or each batch as one gather over the resized cache on --cache-device (the same batches); auto: device when training on a GPU and the cache fits there", d.AugmentOn), (o, v) => o with { AugmentOn = v }),
            Bind(Words.Choice("--cache-device", "Where --augment-on device keeps the resized train images; auto: the training GPU when they fit in half its free memory, else the host", d.CacheDevice), (o, v) => o with { CacheDevice = v }),
            Bind(Opt<string?>("--out", "Run folder (default reports/<time>-<arch>-w<width>), or a sweep's folder of runs", null), (o, v) => o with { Out = v }),
            Bind(Opt("--reuse-out", "Train into an --out that already holds other files (none of them is touched; by default such a folder is refused)", false), (o, v) => o with { ReuseOut = v }),
            Bind(Opt("--resume", "Continue the run in --out from its last completed epoch", false), (o, v) => o with { Resume = v }),
            Bind(Opt("--tensorboard", "Write TensorBoard event files", d.TensorBoard), (o, v) => o with { TensorBoard = v }),
            Bind(Opt<double?>("--dropout", "Classifier dropout (default: the preset's, paper 0.2, notebook 0)", null), (o, v) => o with { Dropout = v }, nameof(TrainOptions.Dropout)),
            Bind(Opt<string?>("--weights", "Start from a .safetensors/.pth state dict (torchvision names) or imagenet1k-v1|imagenet1k-v2", null), (o, v) => o with { Weights = v }, nameof(TrainOptions.Weights)),
            Bind(Opt<int?>("--unfreeze-epoch", "Fine-tuning: features frozen before this epoch (only the head trains), then unfrozen", null), (o, v) => o with { UnfreezeEpoch = v }, nameof(TrainOptions.UnfreezeEpoch)),
            Bind(Opt("--unfreeze-from", "Fine-tuning phase 2 trains features.K on (0 stem, 1-17 blocks, 18 last conv)", d.UnfreezeFrom), (o, v) => o with { UnfreezeFrom = v }, nameof(TrainOptions.UnfreezeFrom)),
            Bind(Words.Choice("--bn-mode", "Fine-tuning phase 2: BatchNorm frozen (inference mode) or train", d.BnMode), (o, v) => o with { BnMode = v }, nameof(TrainOptions.BnMode)),
            Bind(Opt<double?>("--fine-tune-lr", "Fine-tuning phase 2's learning rate (default lr/10), own cosine", null), (o, v) => o with { FineTuneLr = v }, nameof(TrainOptions.FineTuneLr)),
            Bind(Opt("--estimate-only", "Time a few steps of each width, print how long the run would take, and stop (no download)", false), (o, v) => o with { EstimateOnly = v }),
        ];
    }

    /// <summary>Adds every training option and the training action to <paramref name="root"/>; returns how to read its options from a parse.</summary>
    public static Func<ParseResult, TrainOptions> Configure(Command root)
    {
        var table = Table();
        foreach (var row in table) root.Options.Add(row.Option);
        TrainOptions read(ParseResult p) => table.Aggregate(new TrainOptions(), (o, row) => row.Apply(p, o));
        root.SetAction(p => App.Guard(p, () =>
        {
            var opts = Shell(read(p));
            var args = p.Tokens.Select(t => t.Value).ToArray();
            var hooks = new RunHooks(
                Progress: (epochs, steps) => new ProgressPrinter(ProgressOutput.Console(), epochs, steps),
                Stop: StopSignals.Listen, ThrottleMs: App.ThrottleMs);
            var results = Runner.TrainAll(opts, new Backend.LineLogger(line => Console.WriteLine(App.Printable(line))), hooks, // plain lines: a suggested command must copy whole
                describe: recipe => Words.CommandWith(args, Shorter(recipe)));
            if (opts.EstimateOnly) return 0;
            // The run is complete and saved; a figure that cannot be drawn is reported, not a failed training.
            try { PlotCommand.AfterTraining(results); }
            catch (Exception e) when (e is not OutOfMemoryException) { Console.Error.WriteLine($"warning: figures not drawn: {e.Message}"); }
            return results.Any(r => r.Failed) ? 1 : 0;
        }));
        return read;
    }

    /// <summary>
    /// What the shell adds to the options before the library sees them: mirrors from IMAGENETTE_BASE_URL and
    /// KERAS_MOBILENET_WEIGHTS_URL, the task index of a scheduler's array job (from
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when --task-index is not given), and the default --out, named by the
    /// clock (reports/TIME-ARCH-wWIDTH, or reports/TIME-sweep).
    /// </summary>
    public static TrainOptions Shell(TrainOptions o)
    {
        o.Validate(); // the rules about a missing --out first, before one is made up
        bool sweep = Runner.IsSweep(o);
        if (sweep && o.TaskIndex is null && SweepGrid.IndexVariables.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) is not null) is string variable)
        {
            if (o.Out is null)
                throw new Backend.UserError($"${variable} is set, so this is one task of a sweep, but --out is not: every task would make its own sweep folder; give --out SWEEP_DIR, the folder all tasks share", 2);
            o = o with { TaskIndex = Runner.Grid(o)!.TaskIndex(null, Environment.GetEnvironmentVariable) };
        }
        string time = DateTime.Now.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture);
        return o with
        {
            BaseUrl = o.BaseUrl ?? Environment.GetEnvironmentVariable(Imagenette.BaseUrlVariable),
            WeightsBaseUrl = Environment.GetEnvironmentVariable(Pretrained.BaseUrlVariable),
            Out = o.Out ?? Path.Combine("reports", sweep ? $"{time}-sweep" : $"{time}-{Runs.Files.Word(o.Arch)}-w{o.Widths[0].ToString(System.Globalization.CultureInfo.InvariantCulture)}"),
        };
    }

    /// <summary>A shorter recipe as the option words that set it.</summary>
    static Dictionary<string, string> Shorter(ShorterRecipe r)
    {
        var set = new Dictionary<string, string> { ["--image-size"] = $"{r.ImageSize}", ["--epochs"] = $"{r.Epochs}" };
        if (r.Size is ImagenetteSize size) set["--size"] = Runs.Files.Word(size);
        return set;
    }

    /// <summary>A training command line parsed by the table alone (its own root): the parse, with its errors, and the options.</summary>
    public static (ParseResult Parse, TrainOptions Options) Parse(IReadOnlyList<string> args)
    {
        var root = new RootCommand();
        var read = Configure(root);
        App.InvariantNumbers(root);
        var parsed = root.Parse(args);
        return (parsed, parsed.Errors.Count > 0 ? new TrainOptions() : read(parsed));
    }

    /// <summary>
    /// The table's rows for <paramref name="words"/>, for a command that shares them (sweep's grid): new option objects
    /// in the order asked, and how to read them into <see cref="TrainOptions"/> (the other fields keep their defaults).
    /// </summary>
    public static (Option[] Options, Func<ParseResult, TrainOptions> Read) Rows(params string[] words)
    {
        var table = Table();
        var rows = words.Select(w => table.FirstOrDefault(r => r.Option.Name == w) ?? throw new ArgumentException($"{w} is not a training option")).ToArray();
        return ([.. rows.Select(r => r.Option)], p => rows.Aggregate(new TrainOptions(), (o, row) => row.Apply(p, o)));
    }

    /// <summary>Each option word of the table and the run-defining field it sets (null where it defines no run).</summary>
    public static IReadOnlyList<(string Word, string? Defines)> OptionRows() => [.. Table().Select(r => (r.Option.Name, r.Defines))];

    /// <summary>The option word that sets a run-defining field, for messages (the library names fields, not words).</summary>
    public static string WordFor(string field) => Table().FirstOrDefault(r => r.Defines == field)?.Option.Name ?? field;

}
