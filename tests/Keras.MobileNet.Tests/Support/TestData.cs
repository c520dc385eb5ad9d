using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Keras.MobileNet.Tests;

/// <summary>Images, folders and archives the tests make themselves.</summary>
static class TestData
{
    public static byte[] Jpeg(int width, int height, int seed) => Keras.MobileNet.Data.Synthetic.PhotoJpeg(width, height, seed);

    /// <summary>ROOT/{train,val}/&lt;class&gt;/*.JPEG with a few images per class.</summary>
    public static string ImageFolder(string root, string[] classes, int perClassTrain, int perClassVal, int w = 80, int h = 60)
    {
        int seed = 0;
        foreach (var (split, n) in new[] { ("train", perClassTrain), ("val", perClassVal) })
            foreach (var c in classes)
            {
                string dir = Path.Combine(root, split, c);
                Directory.CreateDirectory(dir);
                for (int i = 0; i < n; i++) File.WriteAllBytes(Path.Combine(dir, $"{c}_{i}.JPEG"), Jpeg(w + i, h, seed++));
            }
        return root;
    }

    /// <summary>A .tgz of an Imagenette-shaped tree (folder/{train,val}/wnid/*.JPEG + noisy_imagenette.csv).</summary>
    public static byte[] ImagenetteTgz(string folder, string[] wnids, int perClass)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax))
        {
            var csv = new System.Text.StringBuilder("path,noisy_labels_0,noisy_labels_1,noisy_labels_5,noisy_labels_25,noisy_labels_50,is_valid\n");
            int seed = 100;
            foreach (var split in new[] { "train", "val" })
                foreach (var w in wnids)
                    for (int i = 0; i < perClass; i++)
                    {
                        string name = $"{split}/{w}/{w}_{i}.JPEG";
                        AddFile(tar, $"{folder}/{name}", Jpeg(64 + i, 48, seed++));
                        csv.Append($"{name},{w},{w},{w},{w},{w},{split == "val"}\n");
                    }
            AddFile(tar, $"{folder}/noisy_imagenette.csv", System.Text.Encoding.UTF8.GetBytes(csv.ToString()));
        }
        return ms.ToArray();
    }

    public static void AddFile(TarWriter tar, string name, byte[] data)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) };
        tar.WriteEntry(e);
    }

    public static byte[] Tgz(Action<TarWriter> write)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax)) write(tar);
        return ms.ToArray();
    }
}

/// <summary>
/// A file server on 127.0.0.1 for download tests: honours Range, counts requests, and can cut the first
/// response after a number of bytes.
/// </summary>
sealed class LoopbackServer : IDisposable
{
    readonly HttpListener listener = new();
    readonly Dictionary<string, byte[]> files = new();
    readonly Task loop;
    public int Requests;
    public readonly List<string?> RangeHeaders = [];
    public long? CutFirstResponseAfter { get; set; }
    /// <summary>The first <see cref="StallResponses"/> responses send <see cref="StallAfter"/> bytes, then nothing until disposed.</summary>
    public int StallResponses { get; set; }
    public long StallAfter { get; set; }
    /// <summary>The first this-many requests are answered 503.</summary>
    public int FailFirstWith5xx { get; set; }
    readonly CancellationTokenSource closing = new();
    public string BaseUrl { get; }

    public LoopbackServer()
    {
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        BaseUrl = $"http://127.0.0.1:{port}/";
        listener.Prefixes.Add(BaseUrl);
        listener.Start();
        loop = Task.Run(Serve);
    }

    public void Add(string name, byte[] data) { lock (files) files[name] = data; }

    async Task Serve()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); } catch { return; }
            int n = Interlocked.Increment(ref Requests);
            _ = Task.Run(() => Respond(ctx, n)); // a stalled response must not hold up the next request
        }
    }

    async Task Respond(HttpListenerContext ctx, int n)
    {
        string? range = ctx.Request.Headers["Range"];
        lock (RangeHeaders) RangeHeaders.Add(range);
        if (n <= FailFirstWith5xx) { ctx.Response.StatusCode = 503; ctx.Response.Close(); return; }
        byte[]? data;
        lock (files) files.TryGetValue(ctx.Request.Url!.AbsolutePath.TrimStart('/'), out data);
        if (data is null) { ctx.Response.StatusCode = 404; ctx.Response.Close(); return; }
        long start = 0;
        if (range is not null && range.StartsWith("bytes=")) start = long.Parse(range[6..].TrimEnd('-').Split('-')[0]);
        if (start > 0)
        {
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers["Content-Range"] = $"bytes {start}-{data.Length - 1}/{data.Length}";
        }
        ctx.Response.ContentLength64 = data.Length - start;
        try
        {
            long? stallAfter = n <= StallResponses ? StallAfter : null;
            if ((n == 1 && CutFirstResponseAfter is long) || stallAfter is long)
            {
                long upTo = (n == 1 ? CutFirstResponseAfter : null) ?? stallAfter!.Value;
                await ctx.Response.OutputStream.WriteAsync(data.AsMemory((int)start, (int)Math.Min(upTo, data.Length - start)));
                await ctx.Response.OutputStream.FlushAsync();
                if (stallAfter is not null) await Task.Delay(Timeout.Infinite, closing.Token).ContinueWith(_ => { });
                ctx.Response.Abort();
                return;
            }
            await ctx.Response.OutputStream.WriteAsync(data.AsMemory((int)start));
            ctx.Response.Close();
        }
        catch (HttpListenerException) { }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        closing.Cancel();
        listener.Stop();
        listener.Close();
        try { loop.Wait(2000); } catch (AggregateException) { }
    }
}
