using System.Runtime.InteropServices;

namespace Keras.MobileNet.Backend;

/// <summary>
/// glibc keeps freed heap memory mapped; libtorch's CPU tensors come and go in large sizes every step, so the working
/// set creeps up across epochs. Handing free pages back once per epoch keeps it level.
/// </summary>
public static partial class NativeMemory
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    static bool unavailable;

    /// <summary>malloc_trim(0) on glibc; a no-op elsewhere.</summary>
    public static void Trim()
    {
        if (unavailable || !OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { unavailable = true; }
    }
}
