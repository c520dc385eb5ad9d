using System.Security.Cryptography;
using System.Text;
using Keras.MobileNet.Data;

namespace Keras.MobileNet.Runs;

/// <summary>
/// data.json: what a run trained on: the data root (absolute), the class folders in label order, the image counts and a
/// cheap fingerprint (SHA-256 of every image's path under the root and its size). A resume compares it with the data
/// found now, so epochs 2-3 never train on other images or shifted labels.
/// </summary>
public sealed record DataRecord(string Root, string[] Classes, int Train, int Val, string Fingerprint)
{
    public const string File = "data.json";

    public static DataRecord Of(ImageFolderSplit train, ImageFolderSplit val)
    {
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(train.Directory))!));
        var sb = new StringBuilder();
        foreach (var s in train.Samples.Concat(val.Samples))
        {
            var info = new FileInfo(s.Path);
            sb.Append(Path.GetRelativePath(root, s.Path).Replace('\\', '/')).Append('\0').Append(info.Exists ? info.Length : -1).Append('\n');
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
        return new DataRecord(root, [.. train.Classes], train.Samples.Count, val.Samples.Count, hash);
    }

    /// <summary>How the data found now differs from what the run trained on, in words; null when it is the same.</summary>
    public string? Difference(DataRecord now) =>
        Root != now.Root ? $"was trained on the data in {Root}, not {now.Root}"
        : !Classes.SequenceEqual(now.Classes) ? $"was trained on the classes {string.Join(", ", Classes)}; {Root} now has {string.Join(", ", now.Classes)} (a renamed or added class folder shifts the labels)"
        : Train != now.Train || Val != now.Val ? $"was trained on {Train} train + {Val} val images; {Root} now has {now.Train} + {now.Val}"
        : Fingerprint != now.Fingerprint ? $"was trained on other images: files in {Root} were renamed, replaced or changed size since"
        : null;
}
