namespace Keras.MobileNet.Tests;

public class BackendTests
{
    static string NuGetLibTorchSharp()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Test]
    public void Shipped_library_requires_glibcxx_3_4_32_strongly_and_the_patch_makes_it_weak()
    {
        string shipped = NuGetLibTorchSharp();
        Assume.That(File.Exists(shipped), "TorchSharp package not in the NuGet cache");
        var before = ElfVersionPatch.FindRequirement(File.ReadAllBytes(shipped), TorchRuntime.RequiredGlibcxx);
        Assert.That(before, Has.Count.EqualTo(1));
        Assert.That(before[0].Flags & 2, Is.Zero, "the package as shipped has a strong requirement");

        string dir = Directory.CreateTempSubdirectory("km-elf").FullName;
        try
        {
            string copy = Path.Combine(dir, "runtimes", "libLibTorchSharp.so");
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(shipped, copy);
            // A libstdc++ that defines the version: nothing is touched.
            string newStd = Path.Combine(dir, "new-libstdc++.so.6");
            File.WriteAllBytes(newStd, System.Text.Encoding.ASCII.GetBytes("xx\0GLIBCXX_3.4.32\0yy"));
            Assert.That(TorchRuntime.PatchForOldLibStdCxx(dir, newStd), Is.Zero);
            Assert.That(File.ReadAllBytes(copy), Is.EqualTo(File.ReadAllBytes(shipped)));
            // An old one (text lacks the version): the one flag is set, nothing else changes, twice is a no-op.
            string oldStd = Path.Combine(dir, "old-libstdc++.so.6");
            File.WriteAllBytes(oldStd, System.Text.Encoding.ASCII.GetBytes("GLIBCXX_3.4.30\0"));
            Assert.That(TorchRuntime.PatchForOldLibStdCxx(dir, oldStd), Is.EqualTo(1));
            byte[] a = File.ReadAllBytes(shipped), b = File.ReadAllBytes(copy);
            var after = ElfVersionPatch.FindRequirement(b, TorchRuntime.RequiredGlibcxx);
            Assert.That(after[0].Flags, Is.EqualTo(before[0].Flags | 2));
            Assert.That(Enumerable.Range(0, a.Length).Count(i => a[i] != b[i]), Is.EqualTo(1));
            Assert.That(TorchRuntime.PatchForOldLibStdCxx(dir, oldStd), Is.Zero);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Not_an_elf_file_is_refused() =>
        Assert.That(() => ElfVersionPatch.FindRequirement(new byte[100], "X"), Throws.InstanceOf<InvalidDataException>());

    [Test]
    public void Torch_is_loaded_and_computes() =>
        Assert.That(TorchSharp.torch.ones(3).sum().item<float>(), Is.EqualTo(3f));

    [Test]
    public void Atomic_write_replaces_the_file_whole_and_a_failed_write_leaves_the_old_file_and_no_temp()
    {
        string dir = Directory.CreateTempSubdirectory("km-atomic").FullName;
        try
        {
            string path = Path.Combine(dir, "sub", "state.json");
            AtomicFile.Write(path, tmp => File.WriteAllText(tmp, "old"));
            AtomicFile.Write(path, tmp => File.WriteAllText(tmp, "new"));
            Assert.That(File.ReadAllText(path), Is.EqualTo("new"));
            Assert.That(() => AtomicFile.Write(path, tmp =>
            {
                File.WriteAllText(tmp, "half");
                throw new IOException("disk full");
            }), Throws.TypeOf<IOException>());
            Assert.That(File.ReadAllText(path), Is.EqualTo("new"));
            Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }), "only the finished file");
        }
        finally { Directory.Delete(dir, true); }
    }
}
