namespace Keras.MobileNet.Backend;

/// <summary>How much memory this process may still take.</summary>
public static class Memory
{
    /// <summary>
    /// Linux's MemAvailable (what can be allocated without swapping), capped by the process's limit as .NET sees it
    /// (a container's); elsewhere that limit alone.
    /// </summary>
    public static long AvailableBytes()
    {
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            if (File.Exists("/proc/meminfo"))
                foreach (var line in File.ReadLines("/proc/meminfo"))
                    if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                        && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out long kb))
                        return Math.Min(limit, kb * 1024);
        }
        catch (IOException) { }
        return limit;
    }
}
