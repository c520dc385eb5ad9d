using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Bench;

/// <summary>Clocks, memory probes and small statistics shared by the benchmarks.</summary>
public static class Measure
{
    public static void Sync(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }

    public static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static long PeakWorkingSet()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.PeakWorkingSet64;
    }

    public static long WorkingSet()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }

    /// <summary>Samples the working set (and, on CUDA, the device's used memory) on a timer; Max is the peak seen.</summary>
    public sealed class PeakSampler : IDisposable
    {
        readonly Timer timer;
        long max, maxDevice;
        readonly bool cudaProbe;

        public PeakSampler(bool device = false, int everyMs = 20)
        {
            cudaProbe = device && Nvml.Available;
            Sample();
            timer = new Timer(_ => Sample(), null, everyMs, everyMs);
        }

        void Sample()
        {
            RaiseTo(ref max, WorkingSet());
            if (cudaProbe && Nvml.UsedBytes() is long d) RaiseTo(ref maxDevice, d);
        }

        /// <summary>max = Max(max, value), safe against the timer's thread and a reader's.</summary>
        static void RaiseTo(ref long max, long value)
        {
            long cur;
            while (value > (cur = Interlocked.Read(ref max)) && Interlocked.CompareExchange(ref max, value, cur) != cur) { }
        }

        public long Max { get { Sample(); return Interlocked.Read(ref max); } }
        public long? MaxDevice => cudaProbe ? Interlocked.Read(ref maxDevice) : null;
        public void Dispose() => timer.Dispose();
    }
}

/// <summary>
/// Device memory through NVML (the driver's library): TorchSharp 0.107 exposes no CUDA allocator statistics, so
/// the peak is the device's used memory sampled while the benchmark runs.
/// </summary>
public static partial class Nvml
{
    [LibraryImport("libnvidia-ml.so.1", EntryPoint = "nvmlInit_v2")] private static partial int Init();
    [LibraryImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetHandleByIndex_v2")] private static partial int Handle(uint index, out IntPtr device);
    [LibraryImport("libnvidia-ml.so.1", EntryPoint = "nvmlDeviceGetMemoryInfo")] private static partial int MemoryInfo(IntPtr device, out MemInfo info);

    [StructLayout(LayoutKind.Sequential)]
    private struct MemInfo { public ulong Total, Free, Used; }

    static readonly Lazy<IntPtr> Device = new(() =>
    {
        try { return Init() == 0 && Handle(0, out var d) == 0 ? d : IntPtr.Zero; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return IntPtr.Zero; }
    });

    public static bool Available => OperatingSystem.IsLinux() && Device.Value != IntPtr.Zero;

    public static long? UsedBytes() => Available && MemoryInfo(Device.Value, out var m) == 0 ? (long)m.Used : null;
}
