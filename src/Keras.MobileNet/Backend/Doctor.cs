using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using TorchSharp;

namespace Keras.MobileNet.Backend;

/// <summary>One line of the doctor's report: what, what was found, and what to do when it is missing or wrong.</summary>
public sealed record Finding(string What, string Found, string? Advice = null);

/// <summary>What the program will run on and why: libraries, where they were loaded from, devices, and what is missing.</summary>
public static partial class Doctor
{
    public const string CudaAdvice =
        "no CUDA: build with -p:TorchBackend=cuda where TorchSharp-cuda-linux is served, or build LibTorchSharp against " +
        "your PyTorch with tools/gpu/build-libtorchsharp.sh and set TORCH_LIB_DIR and LIBTORCHSHARP_PATH (docs/gpu.md)";

    /// <param name="native">The user's own CUDA libtorch (TORCH_LIB_DIR and LIBTORCHSHARP_PATH as the command line read them), or null.</param>
    /// <param name="cudaVisibleDevices">CUDA_VISIBLE_DEVICES as the command line read it (shown where it is set).</param>
    public static IReadOnlyList<Finding> Examine(NativeLibTorch? native = null, string? cudaVisibleDevices = null)
    {
        TorchRuntime.Initialize(native);
        var found = new List<Finding>
        {
            new("TorchSharp", typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?", null),
            new("backend", TorchRuntime.Native is { } n ? $"libtorch from {n.LibDir}" : "TorchSharp-cpu package"),
        };
        string? libtorch = TorchRuntime.LoadedLibrary("libtorch_cpu.so");
        found.Add(new("libtorch", libtorch is null ? "not mapped" : $"{LibTorchVersion(libtorch) ?? "version unknown"} from {Path.GetDirectoryName(libtorch)}"));
        string? sharp = TorchRuntime.LoadedLibrary("libLibTorchSharp.so");
        found.Add(new("LibTorchSharp", sharp ?? "not mapped"));
        found.Add(new("GLIBCXX patch", TorchRuntime.GlibcxxPatch));
        bool cuda = torch.cuda.is_available();
        found.Add(new("CUDA", cuda ? $"available, {torch.cuda.device_count()} device(s)" : "not available", cuda ? null : CudaAdvice));
        if (cuda)
        {
            found.Add(new("cuDNN", torch.cuda.is_cudnn_available() ? CudnnVersion() ?? "available" : "not available",
                torch.cuda.is_cudnn_available() ? null : "convolutions run without cuDNN: slow; use a PyTorch build with cuDNN"));
            found.Add(new("driver", Nvml.Driver() ?? "NVML not found (libnvidia-ml.so.1)"));
            for (int i = 0; i < torch.cuda.device_count(); i++)
            {
                var cc = Nvml.ComputeCapability(i);
                found.Add(new($"cuda:{i}", $"{Nvml.DeviceName(i) ?? "?"}, {(Nvml.TotalBytes(i) is long t ? $"{t / 1073741824.0:F1} GiB" : "memory ?")}, " +
                    $"compute capability {(cc is var (ma, mi) ? $"{ma}.{mi}" : "?")}, bf16 {(cc is var (m, _) ? (m >= 8 ? "yes" : "no (needs 8.0)") : "?")}"));
            }
            if (cudaVisibleDevices is not null) found.Add(new("CUDA_VISIBLE_DEVICES", cudaVisibleDevices));
        }
        found.Add(new("data pipeline", $"{Environment.ProcessorCount} cores (the default --workers)",
            Environment.ProcessorCount < 8 && cuda ? "fewer than 8 cores may not feed a GPU: see bench epoch" : null));
        found.Add(new("torch threads", $"{torch.get_num_threads()} intra-op"));
        return found;
    }

    /// <summary>The libtorch version from where it lies: a NuGet folder (libtorch-cpu-linux-x64/2.10.0.0) or a pip install's torch/version.py.</summary>
    public static string? LibTorchVersion(string libtorchPath)
    {
        var m = NuGetVersion().Match(libtorchPath);
        if (m.Success) return m.Groups[1].Value;
        string versionPy = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(libtorchPath)!)!, "version.py");
        if (!File.Exists(versionPy))
        {
            // Copied into an app's output folder: the app's .deps.json names the libtorch package it came from.
            foreach (var deps in Directory.EnumerateFiles(AppContext.BaseDirectory, "*.deps.json"))
                if (NuGetVersion().Match(File.ReadAllText(deps)) is { Success: true } d) return $"{d.Groups[1].Value} (package)";
            return null;
        }
        var v = PyVersion().Match(File.ReadAllText(versionPy));
        return v.Success ? v.Groups[1].Value : null;
    }

    [GeneratedRegex(@"libtorch-[a-z0-9.-]+/(\d+\.\d+\.\d+)")] private static partial Regex NuGetVersion();
    [GeneratedRegex(@"__version__\s*=\s*'([^']+)'")] private static partial Regex PyVersion();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate nuint CudnnGetVersion();

    static string? CudnnVersion()
    {
        foreach (var name in new[] { "libcudnn.so.9", "libcudnn.so.8", "libcudnn.so" })
        {
            string path = TorchRuntime.LoadedLibrary(name) ?? name;
            if (!NativeLibrary.TryLoad(path, out var h) || !NativeLibrary.TryGetExport(h, "cudnnGetVersion", out var f)) continue;
            ulong v = Marshal.GetDelegateForFunctionPointer<CudnnGetVersion>(f)();
            return v >= 10000 ? $"{v / 10000}.{v % 10000 / 100}.{v % 100}" : $"{v / 1000}.{v % 1000 / 100}.{v % 100}";
        }
        return null;
    }
}
