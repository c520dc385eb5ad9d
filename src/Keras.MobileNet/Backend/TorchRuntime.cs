using System.Runtime.InteropServices;
using TorchSharp;

namespace Keras.MobileNet.Backend;

/// <summary>
/// Gets libtorch loaded before the first TorchSharp call: either a CUDA libtorch named by
/// TORCH_LIB_DIR / LIBTORCHSHARP_PATH (see shared/gpu/README.md), or the CPU package, patched where the
/// system's libstdc++ lacks GLIBCXX_3.4.32.
/// </summary>
public static class TorchRuntime
{
    public const string RequiredGlibcxx = "GLIBCXX_3.4.32";
    static readonly object Gate = new();
    static bool initialized;

    /// <summary>The libraries of a CUDA libtorch in the order they must be loaded (dependencies first).</summary>
    public static readonly string[] CudaLibTorchOrder =
        ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];

    /// <summary>What the GLIBCXX check found when the CPU package was loaded.</summary>
    public static string GlibcxxPatch { get; private set; } = "not checked (a CUDA libtorch was loaded)";

    /// <summary>The user's own libtorch this process loaded, or null (the package's).</summary>
    public static NativeLibTorch? Native { get; private set; }

    /// <summary>
    /// Loads libtorch: call it before the first TorchSharp call (the command line does for every verb but doctor, the
    /// tests in their set-up), since the native library must be patched (or the CUDA libtorch loaded) before
    /// TorchSharp's own loader first runs. Idempotent.
    /// </summary>
    /// <param name="native">A CUDA libtorch of the user's and the LibTorchSharp built against it (the command line reads
    /// TORCH_LIB_DIR and LIBTORCHSHARP_PATH); null: the TorchSharp package's own libtorch.</param>
    /// <param name="keepNativeLogLevel">Leave libtorch's log level as it is (the user set TORCH_CPP_LOG_LEVEL).</param>
    public static void Initialize(NativeLibTorch? native = null, bool keepNativeLogLevel = false)
    {
        lock (Gate)
        {
            if (initialized) return;
            string? libDir = native?.LibDir, sharp = native?.LibTorchSharp;
            if (!string.IsNullOrEmpty(libDir) && !string.IsNullOrEmpty(sharp))
            {
                foreach (var lib in CudaLibTorchOrder)
                {
                    string path = Path.Combine(libDir, lib);
                    if (!File.Exists(path)) throw new UserError($"TORCH_LIB_DIR={libDir} has no {lib}");
                    NativeLibrary.Load(path);
                }
                if (!File.Exists(sharp)) throw new UserError($"LIBTORCHSHARP_PATH={sharp} does not exist");
                NativeLibrary.Load(sharp);
                torch.InitializeDeviceType(DeviceType.CUDA);
            }
            else
            {
                if (OperatingSystem.IsLinux())
                {
                    int patched = PatchForOldLibStdCxx(AppContext.BaseDirectory);
                    string? std = FindLibStdCxx();
                    GlibcxxPatch = std is null ? "no libstdc++ found"
                        : LibraryDefinesVersion(std, RequiredGlibcxx) ? $"not needed ({std} has {RequiredGlibcxx})"
                        : $"applied: {std} lacks {RequiredGlibcxx}, the requirement is weak in LibTorchSharp ({patched} file(s) changed now)";
                }
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            if (!keepNativeLogLevel) QuietNativeWarnings();
            Native = native;
            initialized = true;
        }
    }

    /// <summary>
    /// libtorch logs a warning for every 1x1 convolution of a small batch on CPUs where NNPACK cannot start ("Could not
    /// initialize NNPACK! Reason: Unsupported hardware": 36 lines for one predict here), and TorchSharp has no switch
    /// for NNPACK. PyTorch reads TORCH_CPP_LOG_LEVEL in its Python start-up, which plain libtorch never runs; the level
    /// itself is c10's exported FLAGS_caffe2_log_level. Unless the user set TORCH_CPP_LOG_LEVEL, only errors are shown.
    /// </summary>
    static void QuietNativeWarnings()
    {
        if (!OperatingSystem.IsLinux()) return;
        string? c10 = LoadedLibrary("libc10.so");
        if (c10 is null || !NativeLibrary.TryLoad(c10, out var handle)) return;
        if (NativeLibrary.TryGetExport(handle, "FLAGS_caffe2_log_level", out var level)) Marshal.WriteInt32(level, 2); // ERROR
    }

    /// <summary>The full path of a library this process has mapped, by file name.</summary>
    public static string? LoadedLibrary(string fileName) => MappedFiles().FirstOrDefault(f => Path.GetFileName(f) == fileName);

    /// <summary>Patches every libLibTorchSharp.so below <paramref name="folder"/> when the system libstdc++ is too old.</summary>
    public static int PatchForOldLibStdCxx(string folder, string? libStdCxx = null)
    {
        string? stdcxx = libStdCxx ?? FindLibStdCxx();
        if (stdcxx is null || LibraryDefinesVersion(stdcxx, RequiredGlibcxx)) return 0;
        int patched = 0;
        foreach (var lib in Directory.EnumerateFiles(folder, "libLibTorchSharp.so", SearchOption.AllDirectories))
            if (ElfVersionPatch.MakeWeak(lib, RequiredGlibcxx)) patched++;
        return patched;
    }

    /// <summary>The libstdc++ this process has mapped (the .NET runtime links it), else the usual places.</summary>
    public static string? FindLibStdCxx()
    {
        string? mapped = MappedFiles().FirstOrDefault(f => f.Contains("libstdc++.so"));
        if (mapped is not null) return mapped;
        string[] usual = ["/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6"];
        return usual.FirstOrDefault(File.Exists);
    }

    /// <summary>The files this process has mapped, from /proc/self/maps (none where that does not exist).</summary>
    static IEnumerable<string> MappedFiles()
    {
        List<string> files = [];
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
                if (line.IndexOf('/') is int i and >= 0) files.Add(line[i..].Trim());
        }
        catch (IOException) { }
        return files;
    }

    /// <summary>True when the library's string table names the version (a definition in .gnu.version_d).</summary>
    public static bool LibraryDefinesVersion(string path, string version)
    {
        byte[] needle = System.Text.Encoding.ASCII.GetBytes(version + "\0");
        return File.ReadAllBytes(path).AsSpan().IndexOf(needle) >= 0;
    }

    /// <summary>The device of a <see cref="DeviceChoice"/>; cuda:N counts among those CUDA_VISIBLE_DEVICES leaves visible, from 0.</summary>
    public static torch.Device ResolveDevice(DeviceChoice choice)
    {
        Initialize();
        if (choice.Kind == DeviceKind.Cpu) return torch.CPU;
        bool cuda = torch.cuda.is_available();
        if (choice.Kind == DeviceKind.Auto) return cuda ? torch.CUDA : torch.CPU;
        if (!cuda) throw new UserError($"--device {choice}: no CUDA device is available; run 'Train doctor' to see why and what to do");
        int count = torch.cuda.device_count();
        if (choice.Index >= count)
            throw new UserError($"--device {choice}: there are {count} visible CUDA device(s), cuda:0 to cuda:{count - 1} (CUDA_VISIBLE_DEVICES decides which are visible)");
        return choice.Index is int i ? torch.device(DeviceType.CUDA, i) : torch.CUDA;
    }
}

/// <summary>A CUDA libtorch of the user's: the folder of its libraries and the LibTorchSharp built against it.</summary>
public sealed record NativeLibTorch(string LibDir, string LibTorchSharp);
