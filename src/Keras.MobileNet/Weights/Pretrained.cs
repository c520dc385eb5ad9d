using Microsoft.Extensions.Logging;
using System.Collections;
using System.Text.RegularExpressions;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Weights;

/// <summary>torchvision's published MobileNetV2 weights: the paper network at width 1.0, 1000 ImageNet classes.</summary>
public sealed record PublishedWeights(string Name, string FileName, string BaseUrl)
{
    /// <summary>The SHA-256 prefix torchvision puts in its file names (name-PREFIX.pth), checked as torchvision checks it.</summary>
    public string HashPrefix => Regex.Match(FileName, @"-([a-f0-9]+)\.") is { Success: true } m ? m.Groups[1].Value
        : throw new ArgumentException($"{FileName} carries no hash prefix");
}

/// <summary>
/// Weights to start from (<c>--weights</c>): a .safetensors or PyTorch .pth/.pt state dict with torchvision's key names,
/// or torchvision's published ImageNet weights, downloaded once into DATA/weights/.
/// </summary>
public static class Pretrained
{
    public const string BaseUrlVariable = "KERAS_MOBILENET_WEIGHTS_URL";
    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    public static readonly IReadOnlyList<PublishedWeights> Published =
    [
        new("imagenet1k-v1", "mobilenet_v2-b0353104.pth", "https://download.pytorch.org/models/"),
        new("imagenet1k-v2", "mobilenet_v2-7ebf99e0.pth", "https://download.pytorch.org/models/"),
    ];

    public static bool IsPublished(string weights) => Published.Any(p => p.Name == weights);

    /// <summary>The local file for --weights: the file itself, or the published weights (downloaded and checked if needed).</summary>
    public static string Resolve(string weights, string dataDir, string? baseUrl = null, HttpClient? http = null, ILogger? log = null,
        IReadOnlyList<PublishedWeights>? published = null)
    {
        var known = (published ?? Published).FirstOrDefault(p => p.Name == weights);
        if (known is null)
        {
            if (File.Exists(weights)) return weights;
            throw new UserError($"--weights: {weights} is neither a file nor one of {string.Join(", ", Published.Select(p => p.Name))}");
        }
        string file = Path.Combine(dataDir, "weights", known.FileName);
        using var own = http is null ? Download.NewClient() : null;
        Download.EnsureFileAsync(http ?? own!, file, baseUrl ?? known.BaseUrl,
            null, known.HashPrefix, log: log).GetAwaiter().GetResult();
        return file;
    }

    /// <summary>
    /// The mean and std that go with the weights: a run folder's own (its model.json beside the file), else ImageNet's,
    /// which every torchvision weight file was trained with.
    /// </summary>
    public static (float[] Mean, float[] Std) Preprocessing(string weights, string file, ILogger? log = null)
    {
        string card = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, RunReader.Card);
        if (!IsPublished(weights) && File.Exists(card))
        {
            var c = Files.ReadJson<ModelCard>(card, m => m.Problem());
            log?.Line($"preprocessing of {weights}: mean and std from {card}");
            return (c.Mean, c.Std);
        }
        log?.Line($"preprocessing of {weights}: ImageNet's mean and std (torchvision's weights were trained with them)");
        return (ImageNetMean, ImageNetStd);
    }

    /// <summary>The 1000 ImageNet class names in torchvision's order (Resources/make_imagenet_classes.py).</summary>
    public static IReadOnlyList<string> ImageNetClasses { get; } = ReadClasses();

    static string[] ReadClasses()
    {
        using var s = typeof(Pretrained).Assembly.GetManifestResourceStream("imagenet_classes.txt")!;
        using var r = new StreamReader(s);
        return r.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// A ready network for <c>predict --weights</c> and library users: torchvision's published weights as the paper
    /// network at width 1.0 with ImageNet's classes and preprocessing.
    /// </summary>
    public static (ModelCard Card, Model.MobileNetV2 Network) Build(string weights, string dataDir, string? baseUrl = null, ILogger? log = null,
        IReadOnlyList<PublishedWeights>? published = null)
    {
        if (!(published ?? Published).Any(p => p.Name == weights))
            throw new UserError($"--weights {weights}: predict builds torchvision's published networks ({string.Join(", ", Published.Select(p => p.Name))}); " +
                                "for a run of your own use --checkpoint RUN");
        string file = Resolve(weights, dataDir, baseUrl, log: log, published: published);
        var names = ImageNetClasses.ToArray();
        var card = new ModelCard(Architecture.Preset.Paper, 1.0, names.Length, names, names, 224, ImageNetMean, ImageNetStd, 0.2);
        var net = Model.Factories.MobileNetV2(card.Spec());
        if (Load(net, file) is string note) throw new UserError($"{file}: {note}");
        return (card, net);
    }

    /// <summary>
    /// torchvision's ImageNet network cut to the classes of an image folder, for <c>evaluate --weights</c>: each class
    /// folder is an ImageNet class name (or an Imagenette WordNet id, named as Imagenette names it), and the classifier
    /// keeps just those rows of the 1000, in the folder's order.
    /// </summary>
    public static (ModelCard Card, Model.MobileNetV2 Network) BuildFor(string weights, IReadOnlyList<string> classFolders, string dataDir,
        string? baseUrl = null, ILogger? log = null, IReadOnlyList<PublishedWeights>? published = null)
    {
        var index = ImageNetClasses.Select((n, i) => (n, i)).GroupBy(x => x.n, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.First().i, StringComparer.OrdinalIgnoreCase);
        var rows = classFolders.Select(f =>
        {
            string name = Imagenette.HumanName(f).Replace('_', ' ');
            return index.TryGetValue(name, out int i) ? i
                : throw new UserError($"--weights {weights}: class folder '{f}' is not an ImageNet class (evaluate --weights needs folders named " +
                                      "by ImageNet classes, such as 'tench', or by Imagenette's WordNet ids)");
        }).ToArray();
        var (full, big) = Build(weights, dataDir, baseUrl, log, published);
        using (big)
        {
            var names = rows.Select(i => full.ClassNames[i]).ToArray();
            var card = full with { Classes = rows.Length, ClassFolders = [.. classFolders], ClassNames = names };
            var net = Model.Factories.MobileNetV2(card.Spec());
            var from = big.state_dict();
            using var keep = tensor(rows.Select(i => (long)i).ToArray());
            using var _ = no_grad();
            foreach (var (k, t) in net.state_dict())
            {
                if (!k.StartsWith("classifier.1.", StringComparison.Ordinal)) t.copy_(from[k]);
                else
                {
                    using var picked = from[k].index_select(0, keep);
                    t.copy_(picked);
                }
            }
            return (card, net);
        }
    }

    /// <summary>Reads a state dict: safetensors (checked first as untrusted input) or PyTorch's pickle (.pth, .pt).</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new UserError($"--weights: {path} does not exist");
        try
        {
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            {
                Checkpoints.CheckSafetensors(path);
                return Safetensors.LoadStateDict(path);
            }
            CheckPickleArchive(path);
            using var f = File.OpenRead(path);
            var table = PyTorchUnpickler.UnpickleStateDict(f);
            var dict = new Dictionary<string, Tensor>();
            foreach (DictionaryEntry e in table)
                if (e.Key is string k && e.Value is Tensor t) dict[k] = t;
                else throw new InvalidDataException($"entry '{e.Key}' is not a tensor (a state dict is expected, as torch.save(model.state_dict()) writes)");
            return dict;
        }
        catch (Exception e) when (e is not (OutOfMemoryException or UserError))
        {
            throw new UserError($"--weights: {path} is not a readable state dict ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>The most bytes a state dict file may unpack to (MobileNetV2 at width 1.4 is about 25 MB).</summary>
    public const long MaxStateDictBytes = 512L << 20;

    /// <summary>
    /// torch.save's zip archive is untrusted input: the sizes its entries declare are checked before anything is
    /// unpacked (a 1.9 MB file whose compressed entry declared 2 GB allocated 2.18 GB before the shape check).
    /// </summary>
    static void CheckPickleArchive(string path)
    {
        System.IO.Compression.ZipArchive zip;
        try { zip = System.IO.Compression.ZipFile.OpenRead(path); }
        catch (InvalidDataException) { return; } // not a zip: the legacy pickle format, read as a stream
        using (zip)
        {
            long total = 0;
            foreach (var e in zip.Entries)
            {
                total += e.Length;
                if (e.Length > MaxStateDictBytes || total > MaxStateDictBytes)
                    throw new UserError($"--weights: {path} declares {(e.Length > MaxStateDictBytes ? e.Length : total):N0} bytes unpacked " +
                                        $"(entry {e.FullName}), over the {MaxStateDictBytes:N0}-byte limit for a state dict");
            }
        }
    }

    /// <summary>Reads <paramref name="path"/> into <paramref name="network"/> and frees what was read; returns the head note.</summary>
    public static string? Load(nn.Module network, string path)
    {
        var saved = Read(path);
        try { return Checkpoints.Copy(network, saved, path, newHeadAllowed: true); }
        finally { foreach (var t in saved.Values) t.Dispose(); }
    }
}
