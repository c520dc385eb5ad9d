using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace Keras.MobileNet.Tests;

/// <summary>The library package as NuGet writes it: what it depends on, and what it carries.</summary>
[Category("Slow")]
public sealed class PackageTests() : WithTempDir("km-pack-")
{
    [Test]
    public void The_library_package_depends_on_the_managed_TorchSharp_and_no_libtorch_backend()
    {
        // The library as this suite was built (Debug or Release), packed without building it again.
        string configuration = TestContext.CurrentContext.TestDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
        var psi = new ProcessStartInfo("dotnet", ["pack", Path.Combine(Setup.RepoRoot(), "src", "Keras.MobileNet"), "-c", configuration, "--no-build", "-o", dir, "-nologo", "-v", "quiet"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using (var p = Process.Start(psi)!)
        {
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.EqualTo(0), output);
        }
        string nupkg = Directory.GetFiles(dir, "Keras.MobileNet.*.nupkg").Single(f => !f.EndsWith(".snupkg"));
        using var zip = ZipFile.OpenRead(nupkg);
        XDocument nuspec;
        using (var s = zip.GetEntry("Keras.MobileNet.nuspec")!.Open()) nuspec = XDocument.Load(s);
        var ids = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).ToList();
        Assert.That(ids, Does.Contain("TorchSharp").And.Contain("Microsoft.Extensions.Logging.Abstractions"));
        Assert.That(ids.Where(i => i.StartsWith("TorchSharp-", StringComparison.OrdinalIgnoreCase) || i.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase)),
            Is.Empty, "the application picks the native backend");
        var entries = zip.Entries.Select(e => e.FullName).ToList();
        Assert.That(entries, Does.Contain("README.md").And.Contain("LICENSE").And.Contain("lib/net10.0/Keras.MobileNet.xml"));
        Assert.That(entries.Where(e => e.StartsWith("runtimes/")), Is.Empty, "no native library in the library package");
    }
}
