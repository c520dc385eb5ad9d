using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using Keras.MobileNet.Backend;

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
