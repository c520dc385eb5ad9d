using System.Runtime.InteropServices;

namespace Keras.MobileNet.Cli;

/// <summary>
/// glibc's allocator hands each freed block above its mmap threshold back to the kernel and maps the next one afresh,
/// so a batch of 64 images at 224 px (38.5 MB of floats, made for every step) costs about 9,400 page faults each time.
/// <c>bench pipeline</c> measured the pre-resized train path at 1,745 images/s per core with glibc's defaults and
/// 2,426 with the thresholds raised (GLIBC_TUNABLES), the same run otherwise. Raised here, for this process only, before
/// any tensor exists: blocks up to 512 MB come from the heap and up to 1 GB of freed heap is kept for reuse.
/// </summary>
static class HeapSettings
{
    const int TrimThreshold = -1, MmapThreshold = -3; // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD in malloc.h

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code in the shell for one blittable call
    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int MallOpt(int parameter, int value);
#pragma warning restore SYSLIB1054

    /// <summary>Whether glibc took both settings (false elsewhere: other platforms' allocators are left alone).</summary>
    public static bool KeepBatchMemory()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return MallOpt(MmapThreshold, 512 << 20) == 1 & MallOpt(TrimThreshold, 1 << 30) == 1; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; } // not glibc (musl)
    }
}
