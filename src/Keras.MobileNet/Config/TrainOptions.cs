using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using System.Text.Json.Serialization;
using Keras.MobileNet.Model;

namespace Keras.MobileNet.Config;

/// <summary>
/// Every option of a training run, typed: the command line parses its words into this once, and nothing below it sees
/// an option string. Defaults are the notebook's recipe; the dropout's default is the spec's (null here).
/// </summary>
/// <remarks>
/// options.json (and summary.json's "options") is this record. Each property's name in the file is pinned by its
/// attribute, so renaming a property does not change the file; a new or removed field changes the schema, whose version
/// is <see cref="Format"/> (OptionsFileTests pins the list of names).
/// </remarks>
public sealed record TrainOptions
{
    /// <summary>The schema of options.json; absent in files written before it was versioned (the same fields).</summary>
    [JsonPropertyName("format")]
    public string Format { get; init; } = "keras-mobilenet/options-1";

    [JsonPropertyName("widths")]
    public double[] Widths { get; init; } = [1.0];
    [JsonPropertyName("arch")]
    public Preset Arch { get; init; } = Preset.Paper;
    [JsonPropertyName("dataset")]
    public DatasetKind Dataset { get; init; } = DatasetKind.Imagenette;
    [JsonPropertyName("size")]
    public ImagenetteSize Size { get; init; } = ImagenetteSize.Full;
    [JsonPropertyName("data")]
    public string Data { get; init; } = "data";
    [JsonPropertyName("base_url")]
    public string? BaseUrl { get; init; }
    /// <summary>Mirror of the published weights (the command line takes it from KERAS_MOBILENET_WEIGHTS_URL).</summary>
    [JsonPropertyName("weights_base_url")]
    public string? WeightsBaseUrl { get; init; }
    [JsonPropertyName("image_size")]
    public int ImageSize { get; init; } = 224;
    [JsonPropertyName("epochs")]
    public int Epochs { get; init; } = 100;
    [JsonPropertyName("batch_size")]
    public int BatchSize { get; init; } = 64;
    [JsonPropertyName("lr")]
    public double Lr { get; init; } = 1e-3;
    [JsonPropertyName("min_lr")]
    public double? MinLr { get; init; }
    [JsonPropertyName("weight_decay")]
    public double WeightDecay { get; init; } = 0;
    [JsonPropertyName("label_smoothing")]
    public double LabelSmoothing { get; init; } = 0.1;
    [JsonPropertyName("schedule")]
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Epoch;
    [JsonPropertyName("warmup_epochs")]
    public double WarmupEpochs { get; init; }
    [JsonPropertyName("early_stopping_patience")]
    public int EarlyStoppingPatience { get; init; }
    [JsonPropertyName("seed")]
    public long Seed { get; init; }
    /// <summary>A sweep's seeds (null: just Seed). With several widths or seeds, every (width, seed) cell is a run.</summary>
    [JsonPropertyName("seeds")]
    public long[]? Seeds { get; init; }
    /// <summary>Run only this cell of the sweep grid (else SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set).</summary>
    [JsonPropertyName("task_index")]
    public int? TaskIndex { get; init; }
    [JsonPropertyName("device")]
    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;
    [JsonPropertyName("precision")]
    public Precision Precision { get; init; } = Precision.Fp32;
    [JsonPropertyName("memory_format")]
    public MemoryFormat MemoryFormat { get; init; } = MemoryFormat.Auto;
    [JsonPropertyName("train_cache")]
    public TrainCache TrainCache { get; init; } = TrainCache.Auto;
    [JsonPropertyName("augment_on")]
    public AugmentOn AugmentOn { get; init; } = AugmentOn.Auto;
    [JsonPropertyName("cache_device")]
    public CacheDevice CacheDevice { get; init; } = CacheDevice.Auto;
    [JsonPropertyName("inference_engine")]
    public InferenceEngine InferenceEngine { get; init; } = InferenceEngine.Auto;
    [JsonPropertyName("latency")]
    public LatencyMeasure Latency { get; init; } = LatencyMeasure.Fp32;
    [JsonPropertyName("workers")]
    public int Workers { get; init; } = Environment.ProcessorCount;
    [JsonPropertyName("in_memory")]
    public bool InMemory { get; init; } = true;
    [JsonPropertyName("out")]
    public string? Out { get; init; }
    [JsonPropertyName("resume")]
    public bool Resume { get; init; }
    /// <summary>Train into an --out that already holds other files (they are left untouched); by default such a folder is refused.</summary>
    [JsonPropertyName("reuse_out")]
    public bool ReuseOut { get; init; }
    [JsonPropertyName("tensor_board")]
    public bool TensorBoard { get; init; } = true;
    /// <summary>Classifier dropout; null: the preset's (the spec is the one place that knows it).</summary>
    [JsonPropertyName("dropout")]
    public double? Dropout { get; init; }
    /// <summary>Weights to start from: a .safetensors/.pth state dict, or imagenet1k-v1 / imagenet1k-v2 (torchvision's).</summary>
    [JsonPropertyName("weights")]
    public string? Weights { get; init; }
    /// <summary>Fine-tuning: features frozen before this epoch (phase 1, the head trains), then phase 2 (null: no freezing).</summary>
    [JsonPropertyName("unfreeze_epoch")]
    public int? UnfreezeEpoch { get; init; }
    /// <summary>Phase 2 trains the children of features from this index on (0: the stem, 1-17: the blocks, 18: the last conv).</summary>
    [JsonPropertyName("unfreeze_from")]
    public int UnfreezeFrom { get; init; }
    [JsonPropertyName("bn_mode")]
    public BatchNormMode BnMode { get; init; } = BatchNormMode.Frozen;
    /// <summary>Phase 2's starting learning rate (default lr / 10), with its own cosine decay to min-lr.</summary>
    [JsonPropertyName("fine_tune_lr")]
    public double? FineTuneLr { get; init; }
    /// <summary>Print the time estimate (and a shorter recipe where it is long on a CPU), then stop.</summary>
    [JsonPropertyName("estimate_only")]
    public bool EstimateOnly { get; init; }

    /// <summary>
    /// The fields that define a run, each with the value a run folder is compared by (for width: the run's own width;
    /// the data folder as an absolute path; the Imagenette size only for Imagenette). The command line's option table
    /// marks the same fields (a test holds the two equal).
    /// </summary>
    public static readonly IReadOnlyList<(string Field, Func<TrainOptions, double, object?> Value)> RunDefining =
    [
        (nameof(Arch), (o, _) => o.Arch), (nameof(Widths), (_, w) => w), (nameof(Dataset), (o, _) => o.Dataset),
        (nameof(Size), (o, _) => o.Dataset == DatasetKind.Imagenette ? o.Size : null),
        (nameof(Data), (o, _) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.Data))), (nameof(Precision), (o, _) => o.Precision),
        (nameof(ImageSize), (o, _) => o.ImageSize), (nameof(Epochs), (o, _) => o.Epochs), (nameof(BatchSize), (o, _) => o.BatchSize),
        (nameof(Lr), (o, _) => o.Lr), (nameof(MinLr), (o, _) => o.MinLr), (nameof(WeightDecay), (o, _) => o.WeightDecay),
        (nameof(LabelSmoothing), (o, _) => o.LabelSmoothing), (nameof(Schedule), (o, _) => o.Schedule), (nameof(WarmupEpochs), (o, _) => o.WarmupEpochs),
        (nameof(Seed), (o, _) => o.Seed), (nameof(Dropout), (o, _) => o.Dropout), (nameof(Weights), (o, _) => o.Weights),
        (nameof(UnfreezeEpoch), (o, _) => o.UnfreezeEpoch), (nameof(UnfreezeFrom), (o, _) => o.UnfreezeFrom), (nameof(BnMode), (o, _) => o.BnMode),
        (nameof(FineTuneLr), (o, _) => o.FineTuneLr), (nameof(EarlyStoppingPatience), (o, _) => o.EarlyStoppingPatience),
    ];

    /// <summary>The cosine's floor: --min-lr, else lr / 100.</summary>
    [JsonPropertyName("floor_lr")]
    public double FloorLr => MinLr ?? Lr / 100;
    /// <summary>Fine-tuning phase 2's starting rate: --fine-tune-lr, else lr / 10.</summary>
    [JsonPropertyName("phase_two_lr")]
    public double PhaseTwoLr => FineTuneLr ?? Lr / 10;

    /// <summary>A width or a seed given twice would count one run twice in every mean and sd of a comparison.</summary>
    public static void RequireDistinct(IReadOnlyCollection<double> widths, IReadOnlyCollection<long>? seeds)
    {
        if (seeds is not null && seeds.Distinct().Count() != seeds.Count) throw new ArgumentException("--seeds lists a seed twice");
        if (widths.Distinct().Count() != widths.Count) throw new ArgumentException("--width lists a width twice");
    }

    /// <summary>The rules between values (ranges and combinations); a broken one is an ArgumentException naming the option.</summary>
    public void Validate()
    {
        if (Widths.Length == 0) throw new ArgumentException("--width needs at least one value");
        foreach (var w in Widths) MobileNetV2Spec.Validate(w, 2);
        if (Epochs < 1) throw new ArgumentException($"--epochs must be at least 1, not {Epochs}");
        if (BatchSize is < 1 or > 65536) throw new ArgumentException($"--batch-size must be 1 to 65536, not {BatchSize}");
        if (EarlyStoppingPatience < 0) throw new ArgumentException($"--early-stopping must be 0 (off) or a number of epochs, not {EarlyStoppingPatience}");
        if (Epochs > 100_000) throw new ArgumentException($"--epochs must be at most 100000, not {Epochs}");
        if (!(Lr > 0)) throw new ArgumentException($"--lr must be > 0, not {Lr}");
        if (WeightDecay < 0) throw new ArgumentException($"--weight-decay must be >= 0, not {WeightDecay}");
        if (LabelSmoothing is < 0 or >= 1) throw new ArgumentException($"--label-smoothing must be in [0, 1), not {LabelSmoothing}");
        if (Workers < 1) throw new ArgumentException($"--workers must be at least 1, not {Workers}");
        if (BatchSize == 1 && Counts.Layers(MobileNetV2Spec.Build(Arch, Widths.Min(), 2), ImageSize, ImageSize)
                .Last(l => l.Kind == "BatchNorm2d") is { Height: 1, Width: 1 })
            throw new ArgumentException($"--batch-size 1 at --image-size {ImageSize} leaves BatchNorm one value per channel in the last layers; use 2 or more");
        TransformConfig.For(ImageSize);
        if (Dropout is double dr && dr is < 0 or >= 1) throw new ArgumentException($"--dropout must be in [0, 1), not {dr}");
        if (MinLr is double m && (m < 0 || m > Lr)) throw new ArgumentException($"--min-lr must be in [0, --lr], not {m}");
        if (WarmupEpochs < 0 || WarmupEpochs >= Epochs) throw new ArgumentException($"--warmup-epochs must be >= 0 and below --epochs ({Epochs}), not {WarmupEpochs}");
        if (BaseUrl is string url && !(Uri.TryCreate(url, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"))
            throw new ArgumentException($"--base-url must be an http:// or https:// address, not '{url}'");
        if (Resume && Out is null) throw new ArgumentException("--resume needs --out RUN_DIR (the run to continue)");
        if (Seeds is { Length: 0 }) throw new ArgumentException("--seeds needs at least one value");
        RequireDistinct(Widths, Seeds);
        if (TaskIndex is int ti && ti < 0) throw new ArgumentException($"--task-index must be >= 0, not {ti}");
        if (TaskIndex is not null && Out is null) throw new ArgumentException("--task-index needs --out SWEEP_DIR (the folder every task shares)");
        if (TaskIndex is not null && Widths.Length == 1 && Seeds is null) throw new ArgumentException("--task-index needs a sweep: several --width values or --seeds");
        if (UnfreezeEpoch is int e && (e < 0 || e >= Epochs)) throw new ArgumentException($"--unfreeze-epoch must be in [0, --epochs), not {e}");
        int children = MobileNetV2Spec.Table.Sum(r => r.N) + 2;
        if (UnfreezeFrom < 0 || UnfreezeFrom >= children) throw new ArgumentException($"--unfreeze-from must be in [0, {children - 1}] (children of features), not {UnfreezeFrom}");
        if (FineTuneLr is double f && !(f > 0)) throw new ArgumentException($"--fine-tune-lr must be > 0, not {f}");
        if (UnfreezeEpoch is not null && Schedule == ScheduleKind.Step) throw new ArgumentException("--unfreeze-epoch works with --schedule epoch (each phase has its own cosine)");
    }
}
