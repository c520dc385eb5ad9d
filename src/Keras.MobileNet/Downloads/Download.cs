using Microsoft.Extensions.Logging;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Downloads;

public readonly record struct DownloadProgress(long Bytes, long? Total, double BytesPerSecond);

/// <summary>
/// How long a download may wait: for the response headers (connect included), and between two reads of the body; and
/// how often a failed or stalled attempt is retried (each retry resumes with a Range request), with the first wait.
/// </summary>
public sealed record DownloadPolicy(TimeSpan HeadersTimeout, TimeSpan ReadTimeout, int Retries, TimeSpan RetryDelay, long MaxBytes = 3L << 30)
{
    public static readonly DownloadPolicy Default = new(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60), 3, TimeSpan.FromSeconds(2));
}

/// <summary>Streams a URL to a file with resume (HTTP Range), stall timeouts, retries and checksum verification.</summary>
public static class Download
{
    /// <summary>An HTTP client for archives: no overall time limit (a 1.5 GB archive may take hours); stalls are timed per read.</summary>
    public static HttpClient NewClient() => new(new SocketsHttpHandler { ConnectTimeout = DownloadPolicy.Default.HeadersTimeout })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Makes sure <paramref name="file"/> is there and checked: a file already in place (the user's, or an earlier
    /// download) is verified and, if wrong, renamed aside; otherwise it is downloaded from BASE/its name.
    /// </summary>
    public static async Task EnsureFileAsync(HttpClient http, string file, string baseUrl, string? md5, string? sha256,
        IProgress<DownloadProgress>? progress = null, ILogger? log = null, CancellationToken ct = default, DownloadPolicy? policy = null)
    {
        if (File.Exists(file))
        {
            Verify(file, md5, sha256, file, placedByUser: true);
            return;
        }
        if (!Uri.TryCreate(baseUrl.EndsWith('/') ? baseUrl : baseUrl + "/", UriKind.Absolute, out var root) || root.Scheme is not ("http" or "https"))
            throw new UserError($"the mirror '{baseUrl}' is not an http:// or https:// address (a file:// mirror: put the archive in place by hand instead)", 2);
        var url = new Uri(root, Path.GetFileName(file));
        log?.Line($"downloading {url} -> {file}");
        await FetchAsync(http, url, file, md5, sha256, progress, ct, policy, log);
    }

    /// <summary>
    /// Downloads <paramref name="url"/> to <paramref name="destination"/>. Bytes go to destination + ".part"; an
    /// existing .part is resumed with a Range request. A connection that fails, answers 5xx, or sends nothing for
    /// the policy's read timeout is retried a few times (said through <paramref name="log"/>), each time resuming. The
    /// file gets its final name only after the checksums match; a mismatch deletes the partial file.
    /// </summary>
    public static async Task FetchAsync(HttpClient http, Uri url, string destination, string? md5, string? sha256,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default, DownloadPolicy? policy = null, ILogger? log = null)
    {
        policy ??= DownloadPolicy.Default;
        string part = destination + ".part";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        bool answered = false; // a server never reached (offline, wrong host) is said at once, not retried
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await Attempt(http, url, part, policy, progress, () => answered = true, ct);
                break;
            }
            catch (TransientDownloadError e) when (attempt < policy.Retries && answered)
            {
                var wait = policy.RetryDelay * Math.Pow(2, attempt);
                log?.Line($"download of {url} {e.Message}; retry {attempt + 1} of {policy.Retries} in {wait.TotalSeconds:0.#} s, resuming from byte {PartLength(part):N0}");
                await Task.Delay(wait, ct);
            }
            catch (TransientDownloadError e)
            {
                string tries = attempt > 0 ? $" ({attempt + 1} tries)" : "";
                throw new UserError(PartLength(part) > 0
                    ? $"download of {url} {e.Message}{tries}; run again to resume, or place the archive by hand at {destination}"
                    : $"download of {url} {e.Message}{tries}; place the archive by hand at {destination} and run again");
            }
        }
        Verify(part, md5, sha256, url.ToString());
        File.Move(part, destination, overwrite: true);
    }

    sealed class TransientDownloadError(string message) : Exception(message);

    static long PartLength(string part) => File.Exists(part) ? new FileInfo(part).Length : 0;

    static async Task Attempt(HttpClient http, Uri url, string part, DownloadPolicy policy, IProgress<DownloadProgress>? progress,
        Action answered, CancellationToken ct)
    {
        long have = PartLength(part);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(policy.HeadersTimeout);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stall.Token);
        }
        catch (HttpRequestException e) { throw new TransientDownloadError($"failed ({e.Message})"); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TransientDownloadError($"got no response in {policy.HeadersTimeout.TotalSeconds:0.#} s");
        }
        answered();
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0) return; // complete: verify
            if ((int)response.StatusCode >= 500) throw new TransientDownloadError($"failed: HTTP {(int)response.StatusCode}");
            if (!response.IsSuccessStatusCode)
                throw new UserError($"download of {url} failed: HTTP {(int)response.StatusCode}; place the archive by hand at {Path.ChangeExtension(part, null)} and run again");
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
                while (true)
                {
                    stall.CancelAfter(policy.ReadTimeout); // restarted before every read: a stall, not a slow link
                    int n = await body.ReadAsync(buffer, stall.Token);
                    if (n == 0) break;
                    // An endless body (or one past its own Content-Length) would fill the disk: nothing this program
                    // downloads is larger than MaxBytes (Imagenette's full archive is 1.5 GB).
                    if (have + got + n > Math.Min(policy.MaxBytes, total ?? long.MaxValue))
                    {
                        file.Close();
                        File.Delete(part);
                        throw new UserError($"download of {url} sent more than {Math.Min(policy.MaxBytes, total ?? long.MaxValue):N0} bytes, " +
                                            "more than the file can be; stopped and removed the partial file (is the mirror right?)");
                    }
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                    got += n;
                    progress?.Report(new DownloadProgress(have + got, total, got / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TransientDownloadError($"stalled: no data for {policy.ReadTimeout.TotalSeconds:0.#} s after {have + got:N0} bytes");
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new TransientDownloadError($"was cut after {have + got:N0} bytes ({e.Message})");
            }
            if (total is long t && have + got != t)
                throw new TransientDownloadError($"ended at {have + got:N0} of {t:N0} bytes");
        }
    }

    /// <summary>
    /// Checks a file's MD5 (and SHA-256). On a mismatch a partial download of ours is deleted; a file the user placed
    /// (<paramref name="placedByUser"/>) is never deleted: it is renamed aside to NAME.checksum-mismatch and the
    /// message says where.
    /// </summary>
    public static void Verify(string path, string? md5, string? sha256, string what, bool placedByUser = false)
    {
        if (md5 is null && sha256 is null) throw new ArgumentException("a checksum is needed");
        var (gotMd5, gotSha) = Hashes(path, md5 is not null, sha256 is not null);
        // A SHA-256 may be given whole or as the prefix that torchvision's weight file names carry.
        if ((md5 is null || gotMd5!.Equals(md5, StringComparison.OrdinalIgnoreCase))
            && (sha256 is null || gotSha!.StartsWith(sha256, StringComparison.OrdinalIgnoreCase)))
            return;
        var parts = new List<string>();
        if (md5 is not null) parts.Add($"MD5 {gotMd5}, expected {md5}");
        if (sha256 is not null) parts.Add($"SHA-256 {gotSha}, expected {sha256}{(sha256.Length < 64 ? "..." : "")}");
        string fate;
        if (placedByUser)
        {
            string aside = path + ".checksum-mismatch";
            for (int i = 2; File.Exists(aside); i++) aside = $"{path}.checksum-mismatch-{i}";
            File.Move(path, aside);
            fate = $"it was renamed to {aside} (not deleted); put the right file at {path}, or remove it to download";
        }
        else
        {
            File.Delete(path);
            fate = "the partial download was deleted; run again to download it afresh";
        }
        throw new UserError($"checksum mismatch for {what}: {string.Join(", ", parts)}; {fate}");
    }

    /// <summary>MD5 and SHA-256 of a file, as asked, in one read (the archives are up to 1.5 GB).</summary>
    static (string? Md5, string? Sha256) Hashes(string path, bool md5, bool sha256)
    {
        using var m = md5 ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
        using var sha = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        using var f = File.OpenRead(path);
        var buffer = new byte[1 << 20];
        int n;
        while ((n = f.Read(buffer)) > 0)
        {
            m?.AppendData(buffer, 0, n);
            sha?.AppendData(buffer, 0, n);
        }
        return (m is null ? null : Convert.ToHexStringLower(m.GetHashAndReset()), sha is null ? null : Convert.ToHexStringLower(sha.GetHashAndReset()));
    }
}

public static partial class Imagenette
{
    /// <summary>
    /// Makes sure DATA/imagenette2[-size]/ exists: an extracted folder is used as it is (no request); a verified
    /// archive already in DATA is extracted; otherwise the archive is downloaded (resuming a .part) first.
    /// </summary>
    public static async Task<string> EnsureAsync(ImagenetteArchive archive, string dataDir, string? baseUrl, HttpClient http,
        IProgress<DownloadProgress>? progress = null, ILogger? log = null, CancellationToken ct = default,
        DownloadPolicy? policy = null)
    {
        string folder = Path.Combine(dataDir, archive.Folder);
        if (Directory.Exists(Path.Combine(folder, "train")) && Directory.Exists(Path.Combine(folder, "val"))) return folder;
        string file = Path.Combine(dataDir, archive.FileName);
        // Nothing bigger than the archive is written for it: a mirror sending more is stopped at its known size.
        policy ??= DownloadPolicy.Default;
        await Download.EnsureFileAsync(http, file, baseUrl ?? DefaultBaseUrl,
            archive.Md5, archive.Sha256, progress, log, ct, policy with { MaxBytes = Math.Min(policy.MaxBytes, archive.Bytes) });
        log?.Line($"extracting {file} -> {folder}");
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
