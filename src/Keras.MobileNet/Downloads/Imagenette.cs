using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Downloads;

/// <summary>Imagenette's three downloads (the JSON names are the command line's words).</summary>
public enum ImagenetteSize
{
    Full,
    [System.Text.Json.Serialization.JsonStringEnumMemberName("320")] Px320,
    [System.Text.Json.Serialization.JsonStringEnumMemberName("160")] Px160,
}

public sealed record ImagenetteArchive(ImagenetteSize Size, string FileName, string Folder, string Md5, string? Sha256, long Bytes);

/// <summary>fastai's Imagenette: the three sizes, their checksums, and the class names.</summary>
public static partial class Imagenette
{
    public const string DefaultBaseUrl = "https://s3.amazonaws.com/fast-ai-imageclas/";
    public const string BaseUrlVariable = "IMAGENETTE_BASE_URL";
    /// <summary>Images in every size of imagenette2 (the sizes differ only in resolution).</summary>
    public const int TrainImages = 9469, ValImages = 3925;

    public static readonly IReadOnlyList<ImagenetteArchive> Archives =
    [
        new(ImagenetteSize.Full, "imagenette2.tgz", "imagenette2", "fe2fc210e6bb7c5664d602c3cd71e612", null, 1_557_161_267),
        new(ImagenetteSize.Px320, "imagenette2-320.tgz", "imagenette2-320", "3df6f0d01a2c9592104656642f5e78a3",
            "5020a9130cea0348272823cb12d2db7e981c6f2afa3dce71ccd5b8013005c55e", 341_663_724),
        new(ImagenetteSize.Px160, "imagenette2-160.tgz", "imagenette2-160", "e793b78cc4c9e9a4ccc0c1155377a412",
            "88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863", 99_003_388),
    ];

    /// <summary>WordNet id -> human name, in label order (sorted ids).</summary>
    public static readonly IReadOnlyDictionary<string, string> ClassNames = new Dictionary<string, string>
    {
        ["n01440764"] = "tench",
        ["n02102040"] = "English springer",
        ["n02979186"] = "cassette player",
        ["n03000684"] = "chain saw",
        ["n03028079"] = "church",
        ["n03394916"] = "French horn",
        ["n03417042"] = "garbage truck",
        ["n03425413"] = "gas pump",
        ["n03445777"] = "golf ball",
        ["n03888257"] = "parachute",
    };

    public static ImagenetteArchive Archive(ImagenetteSize size) => Archives.First(a => a.Size == size);

    public static string HumanName(string folder) => ClassNames.TryGetValue(folder, out var n) ? n : folder;
}
