using Microsoft.Extensions.Logging;
using System.Collections.Concurrent;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Data;

public sealed record ImageSample(string Path, int Label);

/// <summary>One split of ROOT/{train,val}/&lt;class&gt;/* : classes are the sorted folder names, labels their index.</summary>
public sealed record ImageFolderSplit(string Directory, IReadOnlyList<string> Classes, IReadOnlyList<ImageSample> Samples)
{
    public int[] CountsPerClass() =>
        Enumerable.Range(0, Classes.Count).Select(c => Samples.Count(s => s.Label == c)).ToArray();
}

public static class ImageFolder
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png" };

    /// <summary>Whether <paramref name="path"/> has one of the image extensions a folder is scanned for.</summary>
    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>
    /// Scans ROOT/split/&lt;class&gt;/*.{jpg,jpeg,png} (any case), like Keras image_dataset_from_directory and
    /// torchvision ImageFolder. Pass the train split's classes for val so both share one label map.
    /// </summary>
    public static ImageFolderSplit Scan(string root, string split, IReadOnlyList<string>? classes = null)
    {
        string dir = Path.Combine(root, split);
        if (!System.IO.Directory.Exists(dir)) throw new UserError($"data folder {dir} does not exist (expected ROOT/{split}/<class>/*.jpg)");
        var found = System.IO.Directory.GetDirectories(dir).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.')).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (found.Count == 0) throw new UserError($"{dir} has no class folders");
        if (classes is not null)
        {
            var unknown = found.Except(classes).ToList();
            if (unknown.Count > 0) throw new UserError($"{dir} has class folders not in the train split: {string.Join(", ", unknown)}");
        }
        classes ??= found;
        if (classes.Count < 2) throw new UserError($"{dir} has {classes.Count} class folder; at least 2 are needed");
        var samples = new List<ImageSample>();
        foreach (var name in found)
        {
            int label = IndexOf(classes, name);
            var files = System.IO.Directory.EnumerateFiles(Path.Combine(dir, name))
                .Where(f => Extensions.Contains(Path.GetExtension(f))).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new UserError($"class folder {Path.Combine(dir, name)} has no images (.jpg, .jpeg, .png)");
            samples.AddRange(files.Select(f => new ImageSample(f, label)));
        }
        return new ImageFolderSplit(dir, classes, samples);
    }

    static int IndexOf(IReadOnlyList<string> list, string item)
    {
        for (int i = 0; i < list.Count; i++) if (list[i] == item) return i;
        return -1;
    }
}

/// <summary>Images that could not be used, each with the reason. Shared by the datasets of a run.</summary>
public sealed class BadImageLog
{
    readonly ConcurrentDictionary<string, string> bad = new();
    public ILogger? OnWarning { get; set; }

    public void Add(string path, string why)
    {
        if (bad.TryAdd(path, why)) OnWarning?.Warning($"warning: skipped {path}: {why}");
    }

    public IReadOnlyDictionary<string, string> Entries => bad;
    public int Count => bad.Count;

    /// <summary>
    /// Runs <paramref name="read"/> on one file; a file that is not a usable image or cannot be read is added here
    /// and <c>default</c> returned. The one rule for what counts as unreadable, wherever images are read.
    /// </summary>
    public T? TryRead<T>(string path, Func<T> read)
    {
        try { return read(); }
        catch (BadImageException e) { Add(path, e.Why); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Add(path, e.Message); }
        return default;
    }
}

/// <summary>A dataset the loader can draw from: prepared images (the deterministic stage of the transform) and labels.</summary>
public interface IImageDataset
{
    int Count { get; }
    IReadOnlyList<string> Classes { get; }
    IImageTransform Transform { get; }
    int Label(int index);
    /// <summary>The image after <see cref="IImageTransform.Prepare"/>; null when it cannot be read.</summary>
    RgbImage? Prepared(int index);
}

/// <summary>
/// Like the notebook's ImagenetteInMemory: every image read and decoded once. What is kept is the output of the
/// transform's deterministic stage (train: the decoded image; val: the final center crop), as RGB bytes.
/// </summary>
public sealed class InMemoryDataset : IImageDataset
{
    readonly RgbImage?[] images;
    readonly byte[]?[] encoded; // kept as the file's bytes instead, where decoding would multiply its size (see Build)
    readonly string[] paths;
    readonly int[] labels;
    readonly long maxPixels;

    public IReadOnlyList<string> Classes { get; }
    public IImageTransform Transform { get; }
    public int Count => images.Length;
    public long Bytes { get; }

    InMemoryDataset(RgbImage?[] images, byte[]?[] encoded, string[] paths, int[] labels, IReadOnlyList<string> classes, IImageTransform transform, long maxPixels)
    {
        (this.images, this.encoded, this.paths, this.labels, Classes, Transform, this.maxPixels) = (images, encoded, paths, labels, classes, transform, maxPixels);
        Bytes = images.Sum(i => i?.Bytes ?? 0) + encoded.Sum(e => e?.LongLength ?? 0);
    }

    /// <summary>
    /// A prepared image over 16 MB that is more than 64 times its file (a 143 KB PNG of 49 megapixels is 147 MB decoded)
    /// is kept as the file's bytes and decoded when served: photos stay decoded, such files cannot blow up the memory.
    /// </summary>
    public const long KeepEncodedAbove = 16L << 20;
    public const int KeepEncodedRatio = 64;

    public static InMemoryDataset Build(ImageFolderSplit split, IImageTransform transform, BadImageLog log, int workers,
        long maxPixels = ImageOps.DefaultMaxPixels, Action<int, int>? progress = null)
    {
        var loaded = new RgbImage?[split.Samples.Count];
        var raw = new byte[]?[split.Samples.Count];
        var ok = new bool[split.Samples.Count];
        int done = 0, tenth = Math.Max(1, loaded.Length / 10);
        Parallel.For(0, loaded.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers) }, i =>
        {
            var s = split.Samples[i];
            ok[i] = log.TryRead(s.Path, () =>
            {
                var bytes = ImageOps.ReadFile(s.Path);
                var prepared = transform.Prepare(ImageOps.Decode(bytes, s.Path, maxPixels));
                if (prepared.Bytes > KeepEncodedAbove && prepared.Bytes > (long)KeepEncodedRatio * bytes.Length) raw[i] = bytes;
                else loaded[i] = prepared;
                return true;
            });
            int n = Interlocked.Increment(ref done);
            if (progress is not null && (n % tenth == 0 || n == loaded.Length)) progress(n, loaded.Length); // about every tenth
        });
        var keep = Enumerable.Range(0, loaded.Length).Where(i => ok[i]).ToArray();
        if (keep.Length == 0) throw new UserError($"{split.Directory}: no readable images");
        return new InMemoryDataset(keep.Select(i => loaded[i]).ToArray(), keep.Select(i => raw[i]).ToArray(), keep.Select(i => split.Samples[i].Path).ToArray(),
            keep.Select(i => split.Samples[i].Label).ToArray(), split.Classes, transform, maxPixels);
    }

    public int Label(int index) => labels[index];
    public RgbImage? Prepared(int index) => images[index] ?? Transform.Prepare(ImageOps.Decode(encoded[index]!, paths[index], maxPixels));
}

/// <summary>Reads and decodes from disk every time (low memory). Unreadable files are logged and skipped.</summary>
public sealed class StreamingDataset : IImageDataset
{
    readonly ImageSample[] samples;
    readonly BadImageLog log;
    readonly long maxPixels;

    public IReadOnlyList<string> Classes { get; }
    public IImageTransform Transform { get; }
    public int Count => samples.Length;

    public StreamingDataset(ImageFolderSplit split, IImageTransform transform, BadImageLog log, long maxPixels = ImageOps.DefaultMaxPixels)
    {
        (Classes, Transform, this.log, this.maxPixels) = (split.Classes, transform, log, maxPixels);
        // Headers only: empty files, non-images and oversized images are dropped before training starts.
        var ok = new bool[split.Samples.Count];
        Parallel.For(0, ok.Length, i =>
        {
            var path = split.Samples[i].Path;
            ok[i] = log.TryRead(path, () =>
            {
                ImageOps.CheckFile(path);
                using var f = File.OpenRead(path);
                ImageOps.CheckHeader(f, path, maxPixels);
                return true;
            });
        });
        samples = split.Samples.Where((_, i) => ok[i]).ToArray();
        if (samples.Length == 0) throw new UserError($"{split.Directory}: no readable images");
    }

    public int Label(int index) => samples[index].Label;

    public RgbImage? Prepared(int index)
    {
        string path = samples[index].Path;
        return log.TryRead(path, () => Transform.Prepare(ImageOps.DecodeFile(path, maxPixels)));
    }
}
