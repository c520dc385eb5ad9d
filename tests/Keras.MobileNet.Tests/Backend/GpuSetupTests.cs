using System.Diagnostics;
using System.Text.Json;

namespace Keras.MobileNet.Tests;

/// <summary>A user's way to a GPU from the repository alone: the build switch, doctor, device names, no outside paths.</summary>
public class GpuSetupTests
{
    static string RepoRoot() => Setup.RepoRoot();

    [Test]
    public void Nothing_in_the_repository_points_outside_it()
    {
        string root = RepoRoot();
        var offenders = new[] { "README.md", ".ci/run" }.Select(f => Path.Combine(root, f))
            .Concat(new[] { "src", "tests", "tools" }.SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*", SearchOption.AllDirectories)))
            .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && Path.GetExtension(f) is ".md" or ".cs" or ".sh" or ".py" or ".csproj" or "" or ".json")
            .Where(f => File.ReadAllText(f).Contains("../" + "shared")) // split, or this file would name itself
            .Select(f => Path.GetRelativePath(root, f)).ToList();
        Assert.That(offenders, Is.Empty);
    }

    [TestCase("cpu", DeviceKind.Cpu, null)]
    [TestCase("auto", DeviceKind.Auto, null)]
    [TestCase("CUDA", DeviceKind.Cuda, null)]
    [TestCase("cuda:1", DeviceKind.Cuda, 1)]
    public void Device_names_parse(string name, DeviceKind kind, int? index) =>
        Assert.That(Keras.MobileNet.Cli.Words.Device(name), Is.EqualTo(new DeviceChoice(kind, index)));

    [TestCase("gpu")]
    [TestCase("cuda:")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:x")]
    public void Other_device_names_are_usage_errors(string name) =>
        Assert.That(() => Keras.MobileNet.Cli.Words.Device(name), Throws.InstanceOf<UserError>().With.Property("ExitCode").EqualTo(2)
            .And.Message.Contains("cuda:N"));

    static (int Code, string Out) MsBuild(string dir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("msbuild");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, o);
    }

    [Category("Slow")]
    [Test]
    public void The_backend_switch_asks_for_the_cuda_package_of_the_pinned_version()
    {
        // Evaluation only (no restore, no network): the project's package references under each setting.
        string root = RepoRoot();
        string dir = Directory.CreateTempSubdirectory("km-switch").FullName;
        try
        {
            File.Copy(Path.Combine(root, "Directory.Build.props"), Path.Combine(dir, "Directory.Build.props"));
            foreach (var (folder, project) in new[] { ("lib", "Keras.MobileNet/Keras.MobileNet.csproj"), ("app", "Train/Train.csproj") })
            {
                Directory.CreateDirectory(Path.Combine(dir, folder));
                File.Copy(Path.Combine(root, "src", project), Path.Combine(dir, folder, Path.GetFileName(project)));
            }
            string Torch(string project, params string[] extra)
            {
                var (code, output) = MsBuild(dir, [project, "-getItem:PackageReference", .. extra]);
                Assert.That(code, Is.Zero, output);
                var items = JsonDocument.Parse(output).RootElement.GetProperty("Items").GetProperty("PackageReference").EnumerateArray();
                var torch = items.Single(i => i.GetProperty("Identity").GetString()!.StartsWith("TorchSharp") && i.GetProperty("Identity").GetString() != "TorchSharp.PyBridge");
                return $"{torch.GetProperty("Identity").GetString()} {torch.GetProperty("Version").GetString()}";
            }
            // The application picks the backend; the library depends on the managed TorchSharp under either setting.
            Assert.That(Torch("app/Train.csproj"), Is.EqualTo("TorchSharp-cpu 0.107.0"));
            Assert.That(Torch("app/Train.csproj", "-p:TorchBackend=cuda"), Is.EqualTo("TorchSharp-cuda-linux 0.107.0"));
            Assert.That(Torch("lib/Keras.MobileNet.csproj", "-p:TorchBackend=cuda"), Is.EqualTo("TorchSharp 0.107.0"));
            var (bad, text) = MsBuild(dir, "app/Train.csproj", "-t:CheckTorchBackend", "-p:TorchBackend=rocm");
            Assert.That(bad, Is.Not.Zero);
            Assert.That(text, Does.Contain("TorchBackend must be cpu or cuda, not 'rocm'"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Category("Slow")]
    [Test]
    public void Doctor_names_the_libraries_and_what_to_do_without_cuda()
    {
        var r = Cli.Run(TestContext.CurrentContext.TestDirectory, "doctor");
        Assert.That(r.ExitCode, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Match(@"libtorch:\s+2\.10\.0 \(package\) from /\S+/runtimes/linux-x64/native"));
        Assert.That(r.Out, Does.Match(@"LibTorchSharp:\s+/\S+/libLibTorchSharp\.so"));
        Assert.That(r.Out, Does.Match(@"GLIBCXX patch:\s+(applied|not needed)"));
        Assert.That(r.Out, Does.Contain("CUDA:          not available").And.Contain("-> no CUDA: build with -p:TorchBackend=cuda"));
        Assert.That(r.Out, Does.Contain($"data pipeline: {Environment.ProcessorCount} cores"));
    }
}
