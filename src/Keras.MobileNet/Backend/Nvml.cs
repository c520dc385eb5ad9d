using System.Runtime.InteropServices;

namespace Keras.MobileNet.Backend;

/// <summary>
/// NVIDIA's management library (part of the driver): what TorchSharp 0.107 does not tell, device names, memory and
/// compute capability. Every call answers null where there is no driver.
/// </summary>
public static partial class Nvml
{
    const string Lib = "libnvidia-ml.so.1";
    [LibraryImport(Lib, EntryPoint = "nvmlInit_v2")] private static partial int Init();
    [LibraryImport(Lib, EntryPoint = "nvmlDeviceGetCount_v2")] private static partial int Count(out uint count);
    [LibraryImport(Lib, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")] private static partial int Handle(uint index, out IntPtr device);
    [LibraryImport(Lib, EntryPoint = "nvmlDeviceGetMemoryInfo")] private static partial int MemoryInfo(IntPtr device, out MemInfo info);
    [LibraryImport(Lib, EntryPoint = "nvmlDeviceGetName")] private static unsafe partial int Name(IntPtr device, byte* name, uint length);
    [LibraryImport(Lib, EntryPoint = "nvmlDeviceGetCudaComputeCapability")] private static partial int Capability(IntPtr device, out int major, out int minor);
    [LibraryImport(Lib, EntryPoint = "nvmlSystemGetDriverVersion")] private static unsafe partial int DriverVersion(byte* version, uint length);

    [StructLayout(LayoutKind.Sequential)]
    private struct MemInfo { public ulong Total, Free, Used; }

    static readonly Lazy<bool> Ready = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return Init() == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    });

    public static bool Available => Ready.Value;

    static IntPtr? Device(int index) => Available && Handle((uint)index, out var d) == 0 ? d : null;

    public static int? DeviceCount() => Available && Count(out var n) == 0 ? (int)n : null;

    /// <summary>Memory in use on device <paramref name="index"/>, all processes.</summary>
    public static long? UsedBytes(int index = 0) => Device(index) is IntPtr d && MemoryInfo(d, out var m) == 0 ? (long)m.Used : null;

    /// <summary>Memory free on device <paramref name="index"/>.</summary>
    public static long? FreeBytes(int index = 0) => Device(index) is IntPtr d && MemoryInfo(d, out var m) == 0 ? (long)m.Free : null;

    public static long? TotalBytes(int index = 0) => Device(index) is IntPtr d && MemoryInfo(d, out var m) == 0 ? (long)m.Total : null;

    public static unsafe string? DeviceName(int index = 0)
    {
        if (Device(index) is not IntPtr d) return null;
        byte* buffer = stackalloc byte[96];
        return Name(d, buffer, 96) == 0 ? Marshal.PtrToStringAnsi((IntPtr)buffer) : null;
    }

    public static (int Major, int Minor)? ComputeCapability(int index = 0) =>
        Device(index) is IntPtr d && Capability(d, out int major, out int minor) == 0 ? (major, minor) : null;

    public static unsafe string? Driver()
    {
        if (!Available) return null;
        byte* buffer = stackalloc byte[80];
        return DriverVersion(buffer, 80) == 0 ? Marshal.PtrToStringAnsi((IntPtr)buffer) : null;
    }
}
