using Microsoft.Extensions.Logging;
using Keras.MobileNet.Runs;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using static TorchSharp.torch;
using DeviceType = TorchSharp.DeviceType;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Training;

/// <summary>The data of a run, and the weights file it starts from (whose preprocessing the transforms use).</summary>
public sealed record LoadedData(DataLoader Train, DataLoader Val, string[] ClassFolders, string[] ClassNames, TransformConfig Transform,
    BadImageLog BadImages, string? WeightsFile = null, DataRecord? Record = null)
{
    /// <summary>A network's card with this data's classes, input size and normalisation (for <see cref="Engine.KerasModel.Card"/>).</summary>
    public ModelCard Describe(ModelCard card) => card with
    {
        Classes = ClassFolders.Length, ClassFolders = ClassFolders, ClassNames = ClassNames, ImageSize = Transform.ImageSize,
        Mean = Transform.Mean, Std = Transform.Std,
    };

    /// <summary>The same images, served in the order and with the augmentation of another seed.</summary>
    public LoadedData WithSeed(long seed) => this with { Train = Train.WithSeed(seed), Val = Val.WithSeed(seed) };
}

/// <summary>Where a run's images are, and the loaders over them: the one way training, evaluate and the estimate find them.</summary>
public static class TrainingData
{
    /// <summary>The image-folder root of a run's options (train/ and val/ inside), downloaded or not.</summary>
    public static string Root(TrainOptions o) =>
        o.Dataset == DatasetKind.Imagenette ? Path.Combine(o.Data, Imagenette.Archive(o.Size).Folder) : o.Data;

    /// <summary>A dataset of one split: decoded once and kept (in memory), or decoded per epoch (streaming).</summary>
    public static IImageDataset Dataset(ImageFolderSplit split, IImageTransform transform, BadImageLog bad, bool inMemory, int workers,
        ILogger? log = null) =>
        inMemory
            ? InMemoryDataset.Build(split, transform, bad, workers, progress: log is null || split.Samples.Count < 1000 ? null
                : (n, total) => log.Line($"in-memory dataset: {Path.GetFileName(split.Directory)} {n:N0}/{total:N0} images prepared"))
            : new StreamingDataset(split, transform, bad);

    /// <summary>The val loader of a root for a model's classes and preprocessing (in order, no augmentation).</summary>
    public static DataLoader Val(string root, IReadOnlyList<string> classFolders, TransformConfig cfg, int batchSize, Device device,
        BadImageLog bad, bool inMemory = true, int? workers = null) =>
        Val(ImageFolder.Scan(root, "val", classFolders), cfg, batchSize, device, bad, inMemory, workers);

    /// <summary>The val loader of a split already scanned.</summary>
    public static DataLoader Val(ImageFolderSplit split, TransformConfig cfg, int batchSize, Device device, BadImageLog bad, bool inMemory, int? workers)
    {
        int w = workers ?? Environment.ProcessorCount;
        var ds = Dataset(split, new ValTransform(cfg), bad, inMemory, w);
        return new DataLoader(ds, batchSize, shuffle: false, 0, w, device);
    }

    public static LoadedData Load(TrainOptions o, Device device, ILogger? log = null, string? weightsFile = null)
    {
        log ??= Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        bool imagenette = o.Dataset == DatasetKind.Imagenette;
        string root = o.Data;
        if (imagenette)
        {
            using var http = Download.NewClient();
            root = Imagenette.EnsureAsync(Imagenette.Archive(o.Size), o.Data, o.BaseUrl, http, null, log).GetAwaiter().GetResult();
        }
        else if (!Directory.Exists(root)) throw new UserError($"data folder {root} does not exist");
        var (mean, std) = weightsFile is null ? (null, null) : Pretrained.Preprocessing(o.Weights!, weightsFile, log);
        var cfg = TransformConfig.For(o.ImageSize, mean, std);
        var train = ImageFolder.Scan(root, "train");
        var names = train.Classes.Select(c => imagenette ? Imagenette.HumanName(c) : c).ToArray();
        var valSplit = ImageFolder.Scan(root, "val", train.Classes);
        var (trainCounts, valCounts) = (train.CountsPerClass(), valSplit.CountsPerClass());
        log.Line($"classes ({names.Length}): " + string.Join(", ", names.Select((n, i) => $"{n} {trainCounts[i]}/{valCounts[i]}")));
        var bad = new BadImageLog { OnWarning = log };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trainDs = Dataset(train, TrainTransformFor(o, cfg, train, log), bad, o.InMemory, o.Workers, log);
        var val = Val(valSplit, cfg, o.BatchSize, device, bad, o.InMemory, o.Workers);
        var valDs = val.Dataset;
        log.Line(trainDs is InMemoryDataset t && valDs is InMemoryDataset v
            ? $"in-memory dataset: {t.Count} train + {v.Count} val images, {(t.Bytes + v.Bytes) / 1e6:F1} MB, built in {clock.Elapsed.TotalSeconds:F1} s"
            : $"streaming dataset: {trainDs.Count} train + {valDs.Count} val images");
        if (bad.Count > 0) log.Line($"skipped {bad.Count} unreadable image(s)");
        // A training batch of one image gives BatchNorm one value per channel where the feature map is 1x1: NaN running
        // statistics. Like PyTorch's drop_last, but only for that remainder.
        bool dropLast = o.BatchSize > 1 && trainDs.Count % o.BatchSize == 1;
        if (dropLast) log.Line($"note: {trainDs.Count} train images in batches of {o.BatchSize} leave a last batch of one image, which BatchNorm cannot " +
                          "train on; each epoch drops it (a different image each epoch, as the order is shuffled)");
        return new LoadedData(
            new DataLoader(trainDs, o.BatchSize, shuffle: true, o.Seed, o.Workers, device, dropLast: dropLast, minBatch: o.BatchSize > 1 ? 2 : 1)
            {
                Gather = GatherFor(o, trainDs, device, log),
            },
            val,
            [.. train.Classes], names, cfg, bad, weightsFile, DataRecord.Of(train, valSplit));
    }

    /// <summary>
    /// The train transform of the dataset: for an in-memory one, <see cref="PreResizedTrainTransform"/> (each image
    /// kept at its three RandomResize sizes) when <c>--train-cache resized</c> asks, or for auto when its estimated size
    /// fits in half the memory available; otherwise today's <see cref="TrainTransform"/>. Both give the same batches.
    /// The memory judged by is <paramref name="availableBytes"/>, or <see cref="Backend.Memory.AvailableBytes"/>.
    /// </summary>
    public static IImageTransform TrainTransformFor(TrainOptions o, TransformConfig cfg, ImageFolderSplit train, ILogger log, long? availableBytes = null)
    {
        if (o.InMemory && o.TrainCache == TrainCache.Decoded) return new TrainTransform(cfg); // asked for: no estimate to read
        var pre = new PreResizedTrainTransform(cfg);
        long estimate = EstimateBytes(train, pre), available = availableBytes ?? Backend.Memory.AvailableBytes();
        string sizes = string.Join("/", cfg.TrainResizes);
        if (!o.InMemory)
        {
            // Streaming decodes and resizes every image every epoch (bench pipeline: a few times slower per core than
            // an in-memory cache); building the cache costs one such pass, so in memory wins from the second epoch on
            // whenever it fits.
            log.Line($"train data: streamed, each image read, decoded and resized every epoch; resized once in memory it would take about " +
                     $"{estimate / 1e9:F1} GB ({available / 1e9:F1} GB available): " +
                     (estimate <= available / 2 ? "that fits, and --in-memory true would train faster from the second epoch on" : "streaming is the right choice here"));
            return new TrainTransform(cfg);
        }
        if (o.TrainCache == TrainCache.Resized && estimate > available * 8 / 10)
            throw new UserError($"--train-cache resized: the train images at {sizes} px would take about {estimate / 1e9:F1} GB, " +
                                $"and {available / 1e9:F1} GB are available; use --train-cache decoded, or --in-memory false");
        if (o.TrainCache == TrainCache.Auto && estimate > available / 2)
        {
            log.Line($"train cache: decoded images, resized per sample (at {sizes} px they would take about {estimate / 1e9:F1} GB, " +
                     $"over half the {available / 1e9:F1} GB available)");
            return new TrainTransform(cfg);
        }
        log.Line($"train cache: each image resized once to {sizes} px, about {estimate / 1e6:F0} MB ({available / 1e9:F1} GB available)");
        return pre;
    }

    /// <summary>
    /// The batched gather of a run's train images (<see cref="GatherCache"/>), or null for the per-sample host path, as
    /// <c>--augment-on</c> and <c>--cache-device</c> ask; the log says which was chosen and why. auto: the gather on a
    /// GPU (training on one, the images resized once, and they take at most half its free memory), the host otherwise.
    /// <paramref name="deviceFreeBytes"/> and <paramref name="hostAvailableBytes"/> stand in for NVML's and the OS's answers.
    /// </summary>
    public static GatherCache? GatherFor(TrainOptions o, IImageDataset train, Device device, ILogger log,
        long? deviceFreeBytes = null, long? hostAvailableBytes = null)
    {
        bool gpu = device.type == DeviceType.CUDA;
        if (o.CacheDevice == CacheDevice.Cuda && !gpu) throw new UserError($"--cache-device cuda needs a CUDA training device, not {device.type.ToString().ToLowerInvariant()}");
        if (o.AugmentOn == AugmentOn.Host || (o.AugmentOn == AugmentOn.Auto && !gpu)) return null;
        if (train.Transform is not PreResizedTrainTransform)
        {
            if (o.AugmentOn == AugmentOn.Device)
                throw new UserError("--augment-on device gathers from the train images resized once: it needs --in-memory true and --train-cache resized (or auto, with the memory for it)");
            log.Line("augmentation: per sample on the host (the batched gather needs the train images resized once, which this run does not keep)");
            return null;
        }
        long bytes = GatherCache.BytesFor(train);
        string size = $"{bytes / 1e6:F0} MB";
        Device at = CPU;
        if (gpu && o.CacheDevice != CacheDevice.Cpu)
        {
            long free = deviceFreeBytes ?? Nvml.FreeBytes(Math.Max(0, (int)device.index)) ?? 0;
            if (o.CacheDevice == CacheDevice.Cuda && bytes > free * 0.8)
                throw new UserError($"--cache-device cuda: the train images resized once take {size} and the GPU has {free / 1e9:F1} GB free; use --cache-device cpu or --augment-on host");
            if (o.CacheDevice == CacheDevice.Auto && bytes > free / 2)
            {
                if (o.AugmentOn == AugmentOn.Auto)
                {
                    log.Line($"augmentation: per sample on the host (the train images resized once, {size}, would take over half the GPU's {free / 1e9:F1} GB free)");
                    return null;
                }
            }
            else at = device;
        }
        if (at.type == DeviceType.CPU)
        {
            long available = hostAvailableBytes ?? Backend.Memory.AvailableBytes();
            if (bytes > available * 0.8)
                throw new UserError($"--augment-on device: a host copy of the train images resized once takes {size} and {available / 1e9:F1} GB are available; use --augment-on host");
        }
        string why = o.AugmentOn == AugmentOn.Device ? "--augment-on device" : "training on a GPU";
        log.Line($"augmentation: one gather per batch on {at} over the train images resized once ({size} there; {why})");
        return GatherCache.Build(train, at, Model.Layouts.Resolve(o.MemoryFormat, device) == Model.MemoryFormat.ChannelsLast,
            o.Precision == Model.Precision.Bf16 && gpu ? ScalarType.BFloat16 : ScalarType.Float32);
    }

    /// <summary>The prepared size of the split, from the headers of up to 64 of its files spread over it.</summary>
    static long EstimateBytes(ImageFolderSplit split, PreResizedTrainTransform t)
    {
        int n = split.Samples.Count, take = Math.Min(n, 64);
        var sizes = new List<long>();
        for (int i = 0; i < take; i++)
        {
            var s = split.Samples[(int)((long)i * n / take)];
            try
            {
                ImageOps.CheckFile(s.Path); // a FIFO or a device is never opened (it would block or never end)
                using var f = File.OpenRead(s.Path);
                var (w, h) = ImageOps.CheckHeader(f, s.Path);
                sizes.Add(t.BytesFor(w, h));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or BadImageException) { } // judged when read
        }
        return sizes.Count == 0 ? 0 : (long)(sizes.Average() * n);
    }
}
