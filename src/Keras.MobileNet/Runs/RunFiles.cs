using Keras.MobileNet.Architecture;
using Keras.MobileNet.Config;

namespace Keras.MobileNet.Runs;

/// <summary>model.json: everything needed to rebuild the network and preprocess its input.</summary>
public sealed record ModelCard([property: System.Text.Json.Serialization.JsonRequired] Preset Arch, double Width, int Classes, string[] ClassFolders, string[] ClassNames, int ImageSize,
    float[] Mean, float[] Std, double Dropout, string Format = "keras-mobilenet/1")
{
    public NetworkSpec Spec() => MobileNetV2Spec.Build(Arch, Width, Classes, Dropout);

    /// <summary>The largest input side a card may ask for (a card is untrusted input: 9000 px made a 3.6 GB batch).</summary>
    public const int MaxImageSize = 2048;

    /// <summary>What is wrong with a card read from a file (a field missing or out of range), or null.</summary>
    public string? Problem() =>
        !Enum.IsDefined(Arch) ? $"arch is '{Arch}', not paper or notebook"
        : !(Width > 0 && double.IsFinite(Width)) ? $"width is {Width}, not a positive number"
        : Classes < 2 ? $"classes is {Classes}, not 2 or more"
        : ClassFolders?.Length != Classes ? $"class_folders has {ClassFolders?.Length ?? 0} entries, classes says {Classes}"
        : ClassNames?.Length != Classes ? $"class_names has {ClassNames?.Length ?? 0} entries, classes says {Classes}"
        : ImageSize is < 32 or > MaxImageSize ? $"image_size is {ImageSize}, not 32 to {MaxImageSize}"
        : Mean?.Length != 3 || Std?.Length != 3 || Std.Any(v => !(v > 0)) ? "mean and std need three values each, std > 0"
        : Mean.Concat(Std).Any(v => !float.IsFinite(v)) ? "mean and std must be finite numbers"
        : !(Dropout >= 0 && Dropout < 1) ? $"dropout is {Dropout}, not in [0, 1)"
        : null;
}

/// <summary>How a run ended: every epoch, an early stop, or a failure (a loss or weight that stopped being finite).</summary>
public enum RunStatus { Completed, EarlyStopped, Failed }

/// <summary>summary.json.</summary>
public sealed record RunSummary([property: System.Text.Json.Serialization.JsonRequired] Preset Arch, double Width, int Classes, int ImageSize, long Params, long NonTrainableParams, long Macs,
    double? BestValAccuracy, int BestEpoch, double? FinalValAccuracy, int Epochs, double TrainSeconds, double ImagesPerSecond,
    string Device, long Seed, string? StopReason, TrainOptions Options, RunStatus Status = RunStatus.Completed, MeasuredLatency? Latency = null,
    MeasuredLatency? Int8Latency = null)
{
    /// <summary>What is wrong with a summary read from a file, or null.</summary>
    public string? Problem() => Options is null ? "options is missing" : !Enum.IsDefined(Arch) ? $"arch is '{Arch}'" : null;
}

/// <summary>
/// A network's measured inference latency: the median of <see cref="Runs"/> single-image forward passes in ONNX
/// Runtime on this machine's CPU (fp32, BatchNorm folded, after a warm-up), with the CPU and thread count that
/// measured it, since a latency means nothing without its machine.
/// </summary>
public sealed record MeasuredLatency(double MedianMs, double P90Ms, int Batch, int ImageSize, string Engine, string Cpu, int Threads, int Runs)
{
    /// <summary>"AMD EPYC, 2 threads": which machine measured it, for a figure or a table.</summary>
    public string Machine => $"{Cpu}, {Threads} thread{(Threads == 1 ? "" : "s")}";
}

/// <summary>A run as the trainer returns it and a sweep reads it back.</summary>
public sealed record RunResult(string Folder, RunSummary Summary, IReadOnlyList<HistoryRow> History)
{
    public bool Failed => Summary.Status == RunStatus.Failed;
}

/// <summary>The val confusion matrix of a run's best checkpoint (confusion.json), as counts.</summary>
public sealed record ConfusionData(string[] Classes, long[][] Counts)
{
    /// <summary>Each row divided by its total (rows of classes with no samples stay 0).</summary>
    public double[][] Normalized() => Counts.Select(r =>
    {
        double s = r.Sum();
        return r.Select(c => s == 0 ? 0 : c / s).ToArray();
    }).ToArray();

    /// <summary>What is wrong with confusion data read from a file, or null.</summary>
    public string? Problem() =>
        Classes is null || Counts is null ? "classes and counts are both needed"
        : Counts.Length != Classes.Length || Counts.Any(r => r is null || r.Length != Classes.Length)
            ? $"counts is not a {Classes.Length}x{Classes.Length} matrix (one row and column per class)"
        : Counts.Any(r => r.Any(c => c < 0)) ? "counts has a negative count"
        : null;
}
