using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Data;

public readonly record struct DownloadProgress(long Bytes, long? Total, double BytesPerSecond);

/// <summary>Streams a URL to a file with resume (HTTP Range) and checksum verification.</summary>
public static class Download
{
    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="destination"/>. Bytes go to destination + ".part"; an
    /// existing .part is resumed with a Range request. The file gets its final name only after the checksums match;
    /// a mismatch deletes the partial file.
    /// </summary>
    public static async Task FetchAsync(HttpClient http, Uri url, string destination, string md5, string? sha256,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        string part = destination + ".part";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            throw new UserError($"download of {url} failed ({e.Message}); place the archive by hand at {destination} and run again");
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
                have = new FileInfo(part).Length; // already complete: fall through to verification
            else
            {
                if (!response.IsSuccessStatusCode)
                    throw new UserError($"download of {url} failed: HTTP {(int)response.StatusCode}; place the archive by hand at {destination} and run again");
                bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
                if (!resumed) have = 0;
                long? total = response.Content.Headers.ContentLength is long len ? len + have : null;
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                await using var file = new FileStream(part, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                var buffer = new byte[1 << 16];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                long got = 0;
                try
                {
                    int n;
                    while ((n = await body.ReadAsync(buffer, ct)) > 0)
                    {
                        await file.WriteAsync(buffer.AsMemory(0, n), ct);
                        got += n;
                        progress?.Report(new DownloadProgress(have + got, total, got / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
                    }
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                    throw new UserError($"download of {url} was cut after {have + got:N0} bytes ({e.Message}); run again to resume");
                }
                if (total is long t && have + got != t)
                    throw new UserError($"download of {url} ended at {have + got:N0} of {t:N0} bytes; run again to resume");
            }
        }
        Verify(part, md5, sha256, url.ToString());
        File.Move(part, destination, overwrite: true);
    }

    public static void Verify(string path, string md5, string? sha256, string what)
    {
        var (gotMd5, gotSha) = Hashes(path, sha256 is not null);
        if (!gotMd5.Equals(md5, StringComparison.OrdinalIgnoreCase) || (sha256 is not null && !gotSha!.Equals(sha256, StringComparison.OrdinalIgnoreCase)))
        {
            File.Delete(path);
            string sha = sha256 is null ? "" : $", SHA-256 {gotSha}, expected {sha256}";
            throw new UserError($"checksum mismatch for {what}: MD5 {gotMd5}, expected {md5}{sha}; the file was deleted");
        }
    }

    /// <summary>MD5 and, when asked, SHA-256 of a file in one read (the archives are up to 1.5 GB).</summary>
    static (string Md5, string? Sha256) Hashes(string path, bool sha256)
    {
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        using var sha = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        using var f = File.OpenRead(path);
        var buffer = new byte[1 << 20];
        int n;
        while ((n = f.Read(buffer)) > 0)
        {
            md5.AppendData(buffer, 0, n);
            sha?.AppendData(buffer, 0, n);
        }
        return (Convert.ToHexStringLower(md5.GetHashAndReset()), sha is null ? null : Convert.ToHexStringLower(sha.GetHashAndReset()));
    }
}

public sealed record ImagenetteArchive(string Size, string FileName, string Folder, string Md5, string? Sha256, long Bytes);

/// <summary>fastai's Imagenette: the three sizes, their checksums, and the class names.</summary>
public static class Imagenette
{
    public const string DefaultBaseUrl = "https://s3.amazonaws.com/fast-ai-imageclas/";
    public const string BaseUrlVariable = "IMAGENETTE_BASE_URL";
    /// <summary>Images in every size of imagenette2 (the sizes differ only in resolution).</summary>
    public const int TrainImages = 9469, ValImages = 3925;

    public static readonly IReadOnlyList<ImagenetteArchive> Archives =
    [
        new("full", "imagenette2.tgz", "imagenette2", "fe2fc210e6bb7c5664d602c3cd71e612", null, 1_557_161_267),
        new("320", "imagenette2-320.tgz", "imagenette2-320", "3df6f0d01a2c9592104656642f5e78a3",
            "5020a9130cea0348272823cb12d2db7e981c6f2afa3dce71ccd5b8013005c55e", 341_663_724),
        new("160", "imagenette2-160.tgz", "imagenette2-160", "e793b78cc4c9e9a4ccc0c1155377a412",
            "88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863", 99_003_388),
    ];

    /// <summary>WordNet id -> human name, in label order (sorted ids).</summary>
    public static readonly IReadOnlyDictionary<string, string> ClassNames = new Dictionary<string, string>
    {
        ["n01440764"] = "tench", ["n02102040"] = "English springer", ["n02979186"] = "cassette player",
        ["n03000684"] = "chain saw", ["n03028079"] = "church", ["n03394916"] = "French horn",
        ["n03417042"] = "garbage truck", ["n03425413"] = "gas pump", ["n03445777"] = "golf ball",
        ["n03888257"] = "parachute",
    };

    public static ImagenetteArchive Archive(string size) =>
        Archives.FirstOrDefault(a => a.Size == size) ?? throw new UserError($"--size must be full, 320 or 160, not '{size}'", 2);

    public static string HumanName(string folder) => ClassNames.TryGetValue(folder, out var n) ? n : folder;

    /// <summary>
    /// Makes sure DATA/imagenette2[-size]/ exists: an extracted folder is used as it is (no request); a verified
    /// archive already in DATA is extracted; otherwise the archive is downloaded (resuming a .part) first.
    /// </summary>
    public static async Task<string> EnsureAsync(ImagenetteArchive archive, string dataDir, string? baseUrl, HttpClient http,
        IProgress<DownloadProgress>? progress = null, Action<string>? log = null, CancellationToken ct = default)
    {
        string folder = Path.Combine(dataDir, archive.Folder);
        if (Directory.Exists(Path.Combine(folder, "train")) && Directory.Exists(Path.Combine(folder, "val"))) return folder;
        string file = Path.Combine(dataDir, archive.FileName);
        if (File.Exists(file)) Download.Verify(file, archive.Md5, archive.Sha256, file);
        else
        {
            string root = baseUrl ?? Environment.GetEnvironmentVariable(BaseUrlVariable) ?? DefaultBaseUrl;
            var url = new Uri(new Uri(root.EndsWith('/') ? root : root + "/"), archive.FileName);
            log?.Invoke($"downloading {url} -> {file}");
            await Download.FetchAsync(http, url, file, archive.Md5, archive.Sha256, progress, ct);
        }
        log?.Invoke($"extracting {file} -> {folder}");
        string staging = folder + ".staging";
        if (Directory.Exists(staging)) Directory.Delete(staging, true);
        // The archive holds imagenette2[-size]/...: only that folder is extracted, and becomes the data folder, so
        // its links are judged where they will live.
        SafeTar.ExtractTgz(file, staging, only: archive.Folder);
        if (!Directory.EnumerateFileSystemEntries(staging).Any())
        {
            Directory.Delete(staging, true);
            throw new UserError($"{file} does not contain a {archive.Folder}/ folder");
        }
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Directory.Move(staging, folder);
        return folder;
    }
}
