using System.Globalization;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Model;
using Spectre.Console;
using static TorchSharp.torch;

namespace Keras.MobileNet.Training;

/// <summary>Every option of a training run. Defaults are the notebook's recipe.</summary>
public sealed record TrainOptions
{
    public double[] Widths { get; init; } = [1.0];
    public string Arch { get; init; } = "paper";
    public string Dataset { get; init; } = "imagenette";
    public string Size { get; init; } = "full";
    public string Data { get; init; } = "data";
    public string? BaseUrl { get; init; }
    public int ImageSize { get; init; } = 224;
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 64;
    public double Lr { get; init; } = 1e-3;
    public double? MinLr { get; init; }
    public double WeightDecay { get; init; } = 0;
    public double LabelSmoothing { get; init; } = 0.1;
    public string Schedule { get; init; } = "epoch";
    public double WarmupEpochs { get; init; }
    public int EarlyStoppingPatience { get; init; }
    public long Seed { get; init; }
    /// <summary>A sweep's seeds (null: just Seed). With several widths or seeds, every (width, seed) cell is a run.</summary>
    public long[]? Seeds { get; init; }
    /// <summary>Run only this cell of the sweep grid (else SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set).</summary>
    public int? TaskIndex { get; init; }
    public string Device { get; init; } = "auto";
    public Model.Precision Precision { get; init; } = Model.Precision.Fp32;
    public Model.MemoryFormat MemoryFormat { get; init; } = Model.MemoryFormat.Auto;
    public int Workers { get; init; } = Environment.ProcessorCount;
    public bool InMemory { get; init; } = true;
    public string? Out { get; init; }
    public bool Resume { get; init; }
    public bool TensorBoard { get; init; } = true;
    public double? Dropout { get; init; }
    /// <summary>Weights to start from: a .safetensors/.pth state dict, or imagenet1k-v1 / imagenet1k-v2 (torchvision's).</summary>
    public string? Weights { get; init; }
    /// <summary>Fine-tuning: features frozen before this epoch (phase 1, the head trains), then phase 2 (null: no freezing).</summary>
    public int? UnfreezeEpoch { get; init; }
    /// <summary>Phase 2 trains the children of features from this index on (0: the stem, 1-17: the blocks, 18: the last conv).</summary>
    public int UnfreezeFrom { get; init; }
    /// <summary>BatchNorm of the unfrozen blocks in phase 2: frozen (inference mode, Keras' advice) or train.</summary>
    public string BnMode { get; init; } = "frozen";
    /// <summary>Phase 2's starting learning rate (default lr / 10), with its own cosine decay to min-lr.</summary>
    public double? FineTuneLr { get; init; }
    /// <summary>Print the time estimate (and a shorter recipe where it is long on a CPU), then stop.</summary>
    public bool EstimateOnly { get; init; }
    /// <summary>The command line as given (for the suggested shorter command).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public IReadOnlyList<string> Args { get; init; } = [];
    /// <summary>Sleep per batch (ms): only to make interruption tests deterministic.</summary>
    public int ThrottleMs { get; init; }

    public void Validate()
    {
        foreach (var w in Widths) MobileNetV2Spec.Validate(w, 2);
        if (Widths.Length == 0) throw new ArgumentException("--width needs at least one value");
        MobileNetV2Spec.ParsePreset(Arch);
        if (Dataset is not ("imagenette" or "folder")) throw new ArgumentException($"--dataset must be imagenette or folder, not '{Dataset}'");
        if (Dataset == "imagenette") Imagenette.Archive(Size);
        if (Epochs < 1) throw new ArgumentException($"--epochs must be at least 1, not {Epochs}");
        if (BatchSize < 1) throw new ArgumentException($"--batch-size must be at least 1, not {BatchSize}");
        if (!(Lr > 0)) throw new ArgumentException($"--lr must be > 0, not {Lr}");
        if (WeightDecay < 0) throw new ArgumentException($"--weight-decay must be >= 0, not {WeightDecay}");
        if (LabelSmoothing is < 0 or >= 1) throw new ArgumentException($"--label-smoothing must be in [0, 1), not {LabelSmoothing}");
        if (Schedule is not ("epoch" or "step")) throw new ArgumentException($"--schedule must be epoch or step, not '{Schedule}'");
        if (Workers < 1) throw new ArgumentException($"--workers must be at least 1, not {Workers}");
        if (BatchSize == 1 && Counts.Layers(MobileNetV2Spec.Build(MobileNetV2Spec.ParsePreset(Arch), Widths.Min(), 2), ImageSize, ImageSize)
                .Last(l => l.Kind == "BatchNorm2d") is { Height: 1, Width: 1 })
            throw new ArgumentException($"--batch-size 1 at --image-size {ImageSize} leaves BatchNorm one value per channel in the last layers; use 2 or more");
        TransformConfig.For(ImageSize);
        if (Dropout is double dr && dr is < 0 or >= 1) throw new ArgumentException($"--dropout must be in [0, 1), not {dr}");
        if (MinLr is double m && (m < 0 || m > Lr)) throw new ArgumentException($"--min-lr must be in [0, --lr], not {m}");
        if (WarmupEpochs < 0 || WarmupEpochs >= Epochs) throw new ArgumentException($"--warmup-epochs must be >= 0 and below --epochs ({Epochs}), not {WarmupEpochs}");
        if (Resume && Out is null) throw new ArgumentException("--resume needs --out RUN_DIR (the run to continue)");
        if (Seeds is { Length: 0 }) throw new ArgumentException("--seeds needs at least one value");
        if (Seeds is not null && Seeds.Distinct().Count() != Seeds.Length) throw new ArgumentException("--seeds lists a seed twice");
        if (Widths.Distinct().Count() != Widths.Length) throw new ArgumentException("--width lists a width twice");
        if (TaskIndex is int ti && ti < 0) throw new ArgumentException($"--task-index must be >= 0, not {ti}");
        if (TaskIndex is not null && Out is null) throw new ArgumentException("--task-index needs --out SWEEP_DIR (the folder every task shares)");
        if (TaskIndex is not null && Widths.Length == 1 && Seeds is null) throw new ArgumentException("--task-index needs a sweep: several --width values or --seeds");
        if (UnfreezeEpoch is int e && (e < 0 || e >= Epochs)) throw new ArgumentException($"--unfreeze-epoch must be in [0, --epochs), not {e}");
        int children = MobileNetV2Spec.Table.Sum(r => r.N) + 2;
        if (UnfreezeFrom < 0 || UnfreezeFrom >= children) throw new ArgumentException($"--unfreeze-from must be in [0, {children - 1}] (children of features), not {UnfreezeFrom}");
        if (BnMode is not ("frozen" or "train")) throw new ArgumentException($"--bn-mode must be frozen or train, not '{BnMode}'");
        if (FineTuneLr is double f && !(f > 0)) throw new ArgumentException($"--fine-tune-lr must be > 0, not {f}");
        if (UnfreezeEpoch is not null && Schedule == "step") throw new ArgumentException("--unfreeze-epoch works with --schedule epoch (each phase has its own cosine)");
    }
}

/// <summary>model.json: everything needed to rebuild the network and preprocess its input.</summary>
public sealed record ModelCard(string Arch, double Width, int Classes, string[] ClassFolders, string[] ClassNames, int ImageSize,
    float[] Mean, float[] Std, double Dropout, string Format = "keras-mobilenet/1")
{
    public NetworkSpec Spec() => MobileNetV2Spec.Build(MobileNetV2Spec.ParsePreset(Arch), Width, Classes, Dropout);

    /// <summary>What is wrong with a card read from a file (a field missing or out of range), or null.</summary>
    public string? Problem() =>
        Arch is null ? "arch is missing"
        : Arch.ToLowerInvariant() is not ("paper" or "notebook") ? $"arch is '{Arch}', not paper or notebook"
        : !(Width > 0 && double.IsFinite(Width)) ? $"width is {Width}, not a positive number"
        : Classes < 2 ? $"classes is {Classes}, not 2 or more"
        : ClassFolders?.Length != Classes ? $"class_folders has {ClassFolders?.Length ?? 0} entries, classes says {Classes}"
        : ClassNames?.Length != Classes ? $"class_names has {ClassNames?.Length ?? 0} entries, classes says {Classes}"
        : ImageSize < 32 ? $"image_size is {ImageSize}, not 32 or more"
        : Mean?.Length != 3 || Std?.Length != 3 || Std.Any(v => !(v > 0)) ? "mean and std need three values each, std > 0"
        : !(Dropout >= 0 && Dropout < 1) ? $"dropout is {Dropout}, not in [0, 1)"
        : null;
}

/// <summary>summary.json.</summary>
public sealed record RunSummary(string Arch, double Width, int Classes, int ImageSize, long Params, long NonTrainableParams, long Macs,
    double? BestValAccuracy, int BestEpoch, double? FinalValAccuracy, int Epochs, double TrainSeconds, double ImagesPerSecond,
    string Device, long Seed, string? StopReason, TrainOptions Options)
{
    /// <summary>What is wrong with a summary read from a file, or null.</summary>
    public string? Problem() => Arch is null ? "arch is missing" : null;
}

public sealed record RunResult(string Folder, RunSummary Summary, IReadOnlyList<HistoryRow> History, bool Failed);

/// <summary>The shell around Fit: data, network, callbacks and the run folder.</summary>
public static class Runner
{
    public static string DefaultRunName(TrainOptions o, double width) =>
        $"{DateTime.Now:yyyyMMdd-HHmmss}-{o.Arch}-w{width.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A sweep (several widths or --seeds): its grid; null for a single run.</summary>
    public static SweepGrid? Grid(TrainOptions o) =>
        o.Widths.Length > 1 || o.Seeds is not null
            ? new SweepGrid(o.Arch, o.Widths, o.Seeds ?? [o.Seed], o.Out ?? Path.Combine("reports", $"{DateTime.Now:yyyyMMdd-HHmmss}-sweep"))
            : null;

    /// <summary>
    /// Trains every run in turn (one, or each cell of a sweep, or the one cell of --task-index); returns one result per
    /// run (a comparison is drawn by the caller). A sweep cell that is complete is skipped and a partial one resumes.
    /// </summary>
    public static List<RunResult> TrainAll(TrainOptions o, IAnsiConsole console, Action<string>? log = null, ProgressOutput? progress = null)
    {
        o.Validate();
        log ??= console.WriteLine;
        progress ??= ProgressOutput.Console();
        var grid = Grid(o);
        var cells = grid is null ? null
            : grid.TaskIndex(o.TaskIndex, Environment.GetEnvironmentVariable) is int task ? [grid.Cell(task)] : grid.Cells.ToList();
        if (cells is { Count: 1 } && grid!.Count > 1) log(cells[0].ToString());
        var device = TorchRuntime.ResolveDevice(o.Device);
        var results = new List<RunResult>();
        var todo = new List<(TrainOptions Options, double Width, string Folder)>();
        if (cells is null) todo.Add((o, o.Widths[0], o.Out ?? Path.Combine("reports", DefaultRunName(o, o.Widths[0]))));
        else
            foreach (var c in cells)
            {
                if (Completed(c.Folder) is RunResult done) { log($"{c.Folder}: complete, skipped"); results.Add(done); continue; }
                bool partial = File.Exists(Path.Combine(c.Folder, "trainer_state.json"));
                todo.Add((o with { Widths = [c.Width], Seed = c.Seed, Seeds = null, TaskIndex = null, Out = c.Folder, Resume = partial }, c.Width, c.Folder));
            }
        var fresh = todo.Where(t => !t.Options.Resume).Select(t => t.Width).ToList();
        var estimates = fresh.Count == 0 ? null : PrintEstimate(o, fresh, device, log);
        if (o.EstimateOnly || todo.Count == 0) return results;
        string? weights = o.Weights is null ? null : Pretrained.Resolve(o.Weights, o.Data, log: log); // on --resume too: its preprocessing
        var data = LoadData(o, device, log, weights);
        foreach (var (cellOptions, w, folder) in todo)
        {
            var result = TrainOne(cellOptions, w, folder, device, data.WithSeed(cellOptions.Seed), progress, log, estimates?.GetValueOrDefault(w));
            results.Add(result);
            if (result.Failed) break;
        }
        return results;
    }

    /// <summary>
    /// A finished run in this folder (its state says finished and its summary is written: all epochs, or an early
    /// stop), or null: what a sweep skips, and what its merge waits for.
    /// </summary>
    public static RunResult? Completed(string folder)
    {
        string state = Path.Combine(folder, "trainer_state.json"), summary = Path.Combine(folder, "summary.json");
        if (!File.Exists(state) || !File.Exists(summary)) return null;
        var s = Files.ReadJson<TrainerState>(state, t => t.Problem());
        if (!s.Finished) return null;
        var sum = Files.ReadJson<RunSummary>(summary, r => r.Problem());
        return new RunResult(folder, sum, HistoryRow.ReadCsv(Path.Combine(folder, "history.csv")), false);
    }

    /// <summary>Image counts without decoding anything: a scan of the folders, or Imagenette's published counts before download.</summary>
    static (int Train, int Val) ImageCounts(TrainOptions o)
    {
        string root = o.Dataset == "imagenette" ? Path.Combine(o.Data, Imagenette.Archive(o.Size).Folder) : o.Data;
        if (o.Dataset == "imagenette" && !Directory.Exists(Path.Combine(root, "val"))) return (Imagenette.TrainImages, Imagenette.ValImages);
        if (!Directory.Exists(root)) throw new UserError($"data folder {root} does not exist");
        var train = ImageFolder.Scan(root, "train");
        return (train.Samples.Count, ImageFolder.Scan(root, "val", train.Classes).Samples.Count);
    }

    /// <summary>
    /// Times each width on this device, prints the whole run's expected time, and on a CPU, where that is over an hour,
    /// a shorter recipe that fits. Returns the estimate per width.
    /// </summary>
    static Dictionary<double, double> PrintEstimate(TrainOptions o, IReadOnlyList<double> runWidths, Device device, Action<string> log)
    {
        var (trainImages, valImages) = ImageCounts(o);
        var shape = new RunShape(trainImages, valImages, o.BatchSize, o.Epochs, o.ImageSize);
        int classes = 10;
        var costs = runWidths.Distinct().Select(w => Estimate.Probe(MobileNetV2Spec.Build(MobileNetV2Spec.ParsePreset(o.Arch), w, classes, o.Dropout),
            device, o.BatchSize, o.ImageSize, o.Precision, o.MemoryFormat)).ToList(); // each width timed once, whatever its seeds
        var runs = runWidths.Select(w => costs.First(c => c.Width == w)).ToList();
        foreach (var line in Estimate.Lines(shape, runs, device.ToString())) log(line);
        double total = Estimate.WholeSeconds(shape, runs);
        if (device.type == TorchSharp.DeviceType.CPU && Estimate.Shorter(total, 3600, o.ImageSize, o.Epochs) is var (size, epochs))
        {
            var set = new Dictionary<string, string> { ["--image-size"] = $"{size}", ["--epochs"] = $"{epochs}" };
            if (o.Dataset == "imagenette" && o.Size == "full") set["--size"] = "160"; // a 99 MB download instead of 1.5 GB
            log($"that is long for a CPU; a shorter recipe that fits in about an hour here: {Estimate.Command(o.Args, set)}");
        }
        return costs.ToDictionary(c => c.Width, c => Estimate.WholeSeconds(shape, [c]));
    }

    /// <summary>The data of a run, and the weights file it starts from (whose preprocessing the transforms use).</summary>
    public sealed record LoadedData(DataLoader Train, DataLoader Val, string[] ClassFolders, string[] ClassNames, TransformConfig Transform,
        BadImageLog BadImages, string? WeightsFile = null)
    {
        /// <summary>The same images, served in the order and with the augmentation of another seed.</summary>
        public LoadedData WithSeed(long seed) => this with { Train = Train.WithSeed(seed), Val = Val.WithSeed(seed) };
    }

    public static LoadedData LoadData(TrainOptions o, Device device, Action<string> log, string? weightsFile = null)
    {
        string root = o.Data;
        bool imagenette = o.Dataset == "imagenette";
        if (imagenette)
        {
            using var http = Download.NewClient();
            root = Imagenette.EnsureAsync(Imagenette.Archive(o.Size), o.Data, o.BaseUrl, http, null, log).GetAwaiter().GetResult();
        }
        else if (!Directory.Exists(root)) throw new UserError($"data folder {root} does not exist");
        var (mean, std) = weightsFile is null ? (null, null) : Pretrained.Preprocessing(o.Weights!, weightsFile, log);
        var cfg = TransformConfig.For(o.ImageSize, mean, std);
        var train = ImageFolder.Scan(root, "train");
        var val = ImageFolder.Scan(root, "val", train.Classes);
        var names = train.Classes.Select(c => imagenette ? Imagenette.HumanName(c) : c).ToArray();
        var (trainCounts, valCounts) = (train.CountsPerClass(), val.CountsPerClass());
        log($"classes ({names.Length}): " + string.Join(", ", names.Select((n, i) => $"{n} {trainCounts[i]}/{valCounts[i]}")));
        var bad = new BadImageLog { OnWarning = log };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        IImageDataset trainDs, valDs;
        if (o.InMemory)
        {
            var t = InMemoryDataset.Build(train, new TrainTransform(cfg), bad, o.Workers);
            var v = InMemoryDataset.Build(val, new ValTransform(cfg), bad, o.Workers);
            log($"in-memory dataset: {t.Count} train + {v.Count} val images, {(t.Bytes + v.Bytes) / 1e6:F1} MB, built in {clock.Elapsed.TotalSeconds:F1} s");
            (trainDs, valDs) = (t, v);
        }
        else
        {
            trainDs = new StreamingDataset(train, new TrainTransform(cfg), bad);
            valDs = new StreamingDataset(val, new ValTransform(cfg), bad);
            log($"streaming dataset: {trainDs.Count} train + {valDs.Count} val images");
        }
        if (bad.Count > 0) log($"skipped {bad.Count} unreadable image(s)");
        // A training batch of one image gives BatchNorm one value per channel where the feature map is 1x1: NaN running
        // statistics. Like PyTorch's drop_last, but only for that remainder.
        bool dropLast = o.BatchSize > 1 && trainDs.Count % o.BatchSize == 1;
        if (dropLast) log($"note: {trainDs.Count} train images in batches of {o.BatchSize} leave a last batch of one image, which BatchNorm cannot " +
                          "train on; each epoch drops it (a different image each epoch, as the order is shuffled)");
        return new LoadedData(
            new DataLoader(trainDs, o.BatchSize, shuffle: true, o.Seed, o.Workers, device, dropLast: dropLast),
            new DataLoader(valDs, o.BatchSize, shuffle: false, o.Seed, o.Workers, device),
            [.. train.Classes], names, cfg, bad, weightsFile);
    }

    public static RunResult TrainOne(TrainOptions o, double width, string folder, Device device, LoadedData data, ProgressOutput output,
        Action<string> log, double? estimateSeconds = null)
    {
        using var run = RunFolder.Open(folder, o.TensorBoard); // one run per folder, for the whole run
        var stored = run.ReadState();
        TrainerState state = TrainerState.Empty;
        if (o.Resume)
        {
            if (stored is null) throw new UserError($"--resume: {folder} holds no run to resume (no trainer_state.json)");
            CheckSameRun(folder, o, width);
            run.Publish(stored); // what a kill between the commit and the derived files left, made whole
            state = stored;
            log($"resuming {folder} after epoch {state.CompletedEpochs}");
        }
        else if (stored is not null)
            throw new UserError($"{folder} already holds a run; use --resume to continue it or another --out");
        else run.Sweep(null);
        // The preset's name as the spec knows it, and its dropout unless --dropout says otherwise (the spec is the one
        // place that knows the default: before, "--arch Paper" missed a case-sensitive comparison here and got 0).
        var preset = MobileNetV2Spec.ParsePreset(o.Arch);
        double dropout = MobileNetV2Spec.Build(preset, width, data.ClassFolders.Length, o.Dropout).Dropout;
        var card = new ModelCard(preset.ToString().ToLowerInvariant(), width, data.ClassFolders.Length, data.ClassFolders, data.ClassNames, o.ImageSize,
            data.Transform.Mean, data.Transform.Std, dropout);
        var spec = card.Spec();
        var counts = Counts.Of(spec, o.ImageSize, o.ImageSize);
        if (!o.Resume)
        {
            Files.WriteJson(Path.Combine(folder, "model.json"), card);
            Files.WriteJson(Path.Combine(folder, "options.json"), o);
        }
        log($"{folder}: MobileNetV2 {o.Arch} width {width}, {counts.Trainable:N0} trainable params, {counts.Macs:N0} MACs, device {device}");

        manual_seed(o.Seed); // initialisation is a function of the seed too
        using var model = new KerasModel(Factories.MobileNetV2(spec), device, spec.Classes, o.Precision, o.MemoryFormat) { Seed = o.Seed };
        model.Compile(new CompileOptions(Optimizers.AdamW(o.Lr, o.WeightDecay), Losses.CrossEntropy(o.LabelSmoothing)));
        if (state.CompletedEpochs > 0)
        {
            run.Restore(state, model.Network, model.Optimizer!);
        }
        else if (data.WeightsFile is string wf)
        {
            string? head = Pretrained.Load(model.Network, wf);
            log($"starting from {o.Weights}" + (wf != o.Weights ? $" ({wf})" : "") + (head is null ? "" : $"; {head}"));
        }

        double minLr = o.MinLr ?? o.Lr / 100;
        int steps = data.Train.BatchesPerEpoch;
        Callback schedule = o.Schedule == "step"
            ? new StepLearningRateScheduler(Schedules.WarmupCosine(o.Lr, minLr, (long)o.Epochs * steps, (long)(o.WarmupEpochs * steps)), steps)
            : new LearningRateScheduler(o.UnfreezeEpoch is int ue
                ? Schedules.TwoPhaseCosine(o.Lr, o.FineTuneLr ?? o.Lr / 10, minLr, ue, o.Epochs)
                : Schedules.CosineAnnealing(o.Lr, minLr, o.Epochs));
        var rows = new List<HistoryRow>(state.History ?? (state.CompletedEpochs > 0
            ? HistoryRow.ReadCsv(Path.Combine(folder, "history.csv")).Where(r => r.Epoch <= state.CompletedEpochs) : []));
        var commit = new EpochCommit(run, state, rows, data.Train.Dataset.Count);
        var progress = new ProgressPrinter(output, o.Epochs, steps);
        var callbacks = new List<Callback> { schedule, new TerminateOnNaN(), commit, progress };
        if (o.UnfreezeEpoch is int unfreeze)
        {
            callbacks.Add(new FineTuning(unfreeze, o.UnfreezeFrom, o.BnMode == "train"));
            log($"fine-tuning: features frozen for epochs 1-{unfreeze} (BatchNorm in inference mode), then features.{o.UnfreezeFrom} on train " +
                $"at lr {o.FineTuneLr ?? o.Lr / 10:G3} (BatchNorm {o.BnMode})");
        }
        if (o.EarlyStoppingPatience > 0) callbacks.Add(new EarlyStopping("val_accuracy", o.EarlyStoppingPatience));
        if (o.ThrottleMs > 0) callbacks.Add(new Throttle(o.ThrottleMs));

        var wall = System.Diagnostics.Stopwatch.StartNew();
        using (var signals = StopSignals.Listen())
        {
            callbacks.Add(new StopOnSignal(signals, folder, () => commit.State.CompletedEpochs)); // last: after the epoch's commit
            model.Fit(data.Train, o.Epochs, data.Val, callbacks, initialEpoch: state.CompletedEpochs);
        }
        wall.Stop();

        bool failed = model.StopReason?.Contains("NaN") == true;
        state = commit.State;
        string bestPath = Path.Combine(folder, "best.safetensors");
        if (!failed && File.Exists(bestPath))
        {
            // The confusion matrix of the best checkpoint, for confusion.png and the report.
            Checkpoints.Load(model.Network, bestPath);
            var ev = model.Evaluate(data.Val);
            Files.WriteJson(Path.Combine(folder, "confusion.json"), new Reports.ConfusionData(data.ClassNames, ev.ConfusionRows()));
        }
        state = state with { Finished = !failed };
        run.WriteState(state);
        var summary = new RunSummary(o.Arch, width, spec.Classes, o.ImageSize, counts.Trainable, counts.NonTrainable, counts.Macs,
            double.IsFinite(state.BestValAccuracy) ? state.BestValAccuracy : null, state.BestEpoch,
            rows.LastOrDefault()?.ValAccuracy, rows.Count, state.TrainSeconds, state.TrainImages / Math.Max(state.TrainSeconds, 1e-9), device.ToString(), o.Seed,
            model.StopReason, o);
        Files.WriteJson(Path.Combine(folder, "summary.json"), summary);
        if (model.StopReason is not null) log(model.StopReason);
        log($"{folder}: best val_accuracy {(summary.BestValAccuracy is double b ? b.ToString("F4", CultureInfo.InvariantCulture) : "-")}" +
            $" (epoch {(summary.BestEpoch > 0 ? summary.BestEpoch : "-")}), {rows.Count} epochs; this session trained for " +
            Estimate.Describe(wall.Elapsed.TotalSeconds) + (estimateSeconds is double est ? $" (estimated {Estimate.Describe(est)})" : ""));
        return new RunResult(folder, summary, rows, failed);
    }

    /// <summary>The options that define a run: a resume with any of them changed would not continue the same run.</summary>
    static void CheckSameRun(string folder, TrainOptions o, double width)
    {
        string path = Path.Combine(folder, "options.json");
        if (!File.Exists(path)) throw new UserError($"--resume: {path} is missing, so the run cannot be checked");
        var s = Files.ReadJson<TrainOptions>(path, t => t.Arch is null || t.Widths is null || t.Data is null ? "arch, widths and data are missing" : null);
        static string V(object? v) => v switch { null => "(default)", double d => d.ToString("R", CultureInfo.InvariantCulture), _ => v.ToString()! };
        var pairs = new (string Option, object? Stored, object? Now)[]
        {
            ("--arch", s.Arch.ToLowerInvariant(), o.Arch.ToLowerInvariant()), ("--width", s.Widths.FirstOrDefault(), width),
            ("--dataset", s.Dataset, o.Dataset), ("--size", s.Dataset == "imagenette" ? s.Size : null, o.Dataset == "imagenette" ? o.Size : null),
            ("--data", Path.GetFullPath(s.Data), Path.GetFullPath(o.Data)), ("--image-size", s.ImageSize, o.ImageSize),
            ("--epochs", s.Epochs, o.Epochs), ("--batch-size", s.BatchSize, o.BatchSize), ("--lr", s.Lr, o.Lr), ("--min-lr", s.MinLr, o.MinLr),
            ("--weight-decay", s.WeightDecay, o.WeightDecay), ("--label-smoothing", s.LabelSmoothing, o.LabelSmoothing),
            ("--schedule", s.Schedule, o.Schedule), ("--warmup-epochs", s.WarmupEpochs, o.WarmupEpochs), ("--seed", s.Seed, o.Seed),
            ("--dropout", s.Dropout, o.Dropout), ("--weights", s.Weights, o.Weights), ("--unfreeze-epoch", s.UnfreezeEpoch, o.UnfreezeEpoch),
            ("--unfreeze-from", s.UnfreezeFrom, o.UnfreezeFrom), ("--bn-mode", s.BnMode, o.BnMode), ("--fine-tune-lr", s.FineTuneLr, o.FineTuneLr), ("--early-stopping", s.EarlyStoppingPatience, o.EarlyStoppingPatience),
        };
        foreach (var (option, stored, now) in pairs)
            if (!Equals(stored, now))
                throw new UserError($"--resume: {folder} was trained with {option} {V(stored)}, not {V(now)}; resume with the same options or train into another --out");
    }

    /// <summary>Rebuilds the network of a run folder (or of a .safetensors next to its model.json) and loads its weights.</summary>
    public static (ModelCard Card, MobileNetV2 Network) LoadCheckpoint(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "best.safetensors") : path;
        string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        string cardPath = Path.Combine(dir, "model.json");
        if (!File.Exists(file)) throw new UserError($"checkpoint {file} does not exist");
        if (!File.Exists(cardPath)) throw new UserError($"{cardPath} is missing: it says how to rebuild the network of {file}");
        var card = Files.ReadJson<ModelCard>(cardPath, c => c.Problem());
        TorchRuntime.Initialize();
        var net = Factories.MobileNetV2(card.Spec());
        Checkpoints.Load(net, file);
        return (card, net);
    }
}

/// <summary>
/// Commits each finished epoch to the run folder: the history row, the best-so-far and the checkpoints go into one
/// state that one rename makes current. An epoch whose loss is not finite commits nothing (the last good one stays).
/// </summary>
public sealed class EpochCommit(RunFolder run, TrainerState start, List<HistoryRow> rows, int imagesPerEpoch) : Callback
{
    public TrainerState State { get; private set; } = start with { History = [.. rows] };

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (NonFinite.Epoch(logs, Model.Network)) return;
        rows.RemoveAll(r => r.Epoch >= epoch + 1);
        rows.Add(HistoryRow.From(epoch, logs));
        double v = logs.Get("val_accuracy") ?? logs["accuracy"];
        bool best = v > State.BestValAccuracy;
        var next = State with
        {
            CompletedEpochs = epoch + 1, TrainSeconds = State.TrainSeconds + logs["seconds"], TrainImages = State.TrainImages + imagesPerEpoch,
            BestValAccuracy = best ? v : State.BestValAccuracy, BestEpoch = best ? epoch + 1 : State.BestEpoch, History = [.. rows],
        };
        State = run.Commit(Model.Network, Model.Optimizer!, next, best);
    }
}

/// <summary>Sleeps after each batch (test aid: widens the window in which a run can be interrupted).</summary>
public sealed class Throttle(int ms) : Callback
{
    public override void OnBatchEnd(int batch, Logs logs) => Thread.Sleep(ms);
}
