using System.Formats.Tar;
using System.Security.Cryptography;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Keras.MobileNet.Tests;

[Category("Slow")] // starts the Train program, a terminal or a server
public class DownloadTests() : WithTempDir("km-dl")
{
    static readonly string[] Wnids = ["n01440764", "n02102040", "n02979186"];

    static ImagenetteArchive Spec(byte[] tgz, string? md5 = null) =>
        new(ImagenetteSize.Px160, "imagenette2-160.tgz", "imagenette2-160", md5 ?? Convert.ToHexStringLower(MD5.HashData(tgz)),
            Convert.ToHexStringLower(SHA256.HashData(tgz)), tgz.Length);

    [Test]
    public async Task Download_verifies_extracts_and_a_second_run_makes_no_request()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 2);
        using var server = new LoopbackServer();
        server.Add("imagenette2-160.tgz", tgz);
        using var http = new HttpClient();
        var seen = new List<DownloadProgress>();
        string folder = await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http, new SyncProgress<DownloadProgress>(seen.Add));
        Assert.That(server.Requests, Is.EqualTo(1));
        Assert.That(seen.Last().Bytes, Is.EqualTo(tgz.Length));
        Assert.That(File.Exists(Path.Combine(folder, "noisy_imagenette.csv")));
        var train = ImageFolder.Scan(folder, "train");
        var val = ImageFolder.Scan(folder, "val", train.Classes);
        Assert.That(train.Classes, Is.EqualTo(Wnids));
        Assert.That(train.Classes.Select(Imagenette.HumanName), Is.EqualTo(new[] { "tench", "English springer", "cassette player" }));
        Assert.That(train.CountsPerClass(), Is.EqualTo(new[] { 2, 2, 2 }));
        Assert.That(val.Samples.Select(s => s.Label), Is.EqualTo(new[] { 0, 0, 1, 1, 2, 2 }));
        Assert.That(Directory.GetDirectories(dir).Select(Path.GetFileName), Is.EqualTo(new[] { "imagenette2-160" }), "no staging left over");

        await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http);
        Assert.That(server.Requests, Is.EqualTo(1), "second run finds the folder");
    }

    [Test]
    public void Wrong_checksum_leaves_nothing_extracted()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 1);
        using var server = new LoopbackServer();
        server.Add("imagenette2-160.tgz", tgz);
        using var http = new HttpClient();
        Assert.That(async () => await Imagenette.EnsureAsync(Spec(tgz, new string('0', 32)), dir, server.BaseUrl, http),
            Throws.InstanceOf<UserError>().With.Message.Contains("checksum mismatch"));
        var badSha = Spec(tgz) with { Sha256 = new string('0', 64) };
        Assert.That(async () => await Imagenette.EnsureAsync(badSha, dir, server.BaseUrl, http),
            Throws.InstanceOf<UserError>().With.Message.Contains("SHA-256 ").And.Message.Contains("expected " + badSha.Sha256), "a right MD5 does not excuse a wrong SHA-256");
        Assert.That(Directory.EnumerateFileSystemEntries(dir), Is.Empty);
    }

    [Test]
    public async Task A_hand_placed_archive_with_a_wrong_checksum_is_renamed_aside_not_deleted()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 1);
        string placed = Path.Combine(dir, "imagenette2-160.tgz");
        byte[] wrong = tgz[..^10];
        File.WriteAllBytes(placed, wrong);
        using var http = new HttpClient();
        for (int i = 1; i <= 2; i++) // twice: the second does not overwrite the first
        {
            Assert.That(async () => await Imagenette.EnsureAsync(Spec(tgz), dir, "http://127.0.0.1:9/", http),
                Throws.InstanceOf<UserError>().With.Message.Contains("checksum mismatch for " + placed)
                    .And.Message.Contains("renamed to " + placed + ".checksum-mismatch").And.Message.Contains("not deleted"));
            Assert.That(File.Exists(placed), Is.False);
            if (i == 1) File.WriteAllBytes(placed, wrong);
        }
        Assert.That(File.ReadAllBytes(placed + ".checksum-mismatch"), Is.EqualTo(wrong));
        Assert.That(File.ReadAllBytes(placed + ".checksum-mismatch-2"), Is.EqualTo(wrong));
        // With the right archive in place it is used as it is, with no request.
        File.WriteAllBytes(placed, tgz);
        string folder = await Imagenette.EnsureAsync(Spec(tgz), dir, "http://127.0.0.1:9/", http);
        Assert.That(ImageFolder.Scan(folder, "train").Samples, Has.Count.EqualTo(3));
    }

    [Test]
    public async Task Cut_download_resumes_with_a_range_request()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 3);
        using var server = new LoopbackServer { CutFirstResponseAfter = 10_000 };
        server.Add("imagenette2-160.tgz", tgz);
        using var http = new HttpClient();
        Assert.That(async () => await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http, policy: NoRetry),
            Throws.InstanceOf<UserError>().With.Message.Contains("run again to resume"));
        long partial = new FileInfo(Path.Combine(dir, "imagenette2-160.tgz.part")).Length;
        Assert.That(partial, Is.GreaterThan(0).And.LessThan(tgz.Length));
        string folder = await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http);
        Assert.That(server.RangeHeaders.Last(), Is.EqualTo($"bytes={partial}-"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "imagenette2-160.tgz")), Is.EqualTo(tgz));
        Assert.That(ImageFolder.Scan(folder, "train").Samples, Has.Count.EqualTo(9));
    }

    static readonly DownloadPolicy NoRetry = DownloadPolicy.Default with { Retries = 0 };
    static readonly DownloadPolicy Quick = new(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(400), 3, TimeSpan.FromMilliseconds(10));

    [Test]
    public async Task A_body_longer_than_anything_downloaded_is_stopped_and_its_part_removed()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 3);
        using var server = new LoopbackServer();
        server.Add("imagenette2-160.tgz", tgz);
        using var http = Download.NewClient();
        var policy = NoRetry with { MaxBytes = 1000 };
        var e = Assert.ThrowsAsync<UserError>(() => Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http, policy: policy));
        Assert.That(e!.Message, Does.Contain("sent more than 1,000 bytes"));
        Assert.That(Directory.GetFiles(dir, "*.part", SearchOption.AllDirectories), Is.Empty, "nothing half-written is left");
        await Task.CompletedTask;
    }

    [Test]
    public async Task A_stalled_or_cut_or_failing_mirror_is_retried_resuming_with_range()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 3);
        using var server = new LoopbackServer { StallResponses = 1, StallAfter = 5_000, FailFirstWith5xx = 0 };
        server.Add("imagenette2-160.tgz", tgz);
        using var http = Download.NewClient();
        var said = new List<string>();
        // The server stalls for hours after 5,000 bytes: the download returning at all shows the read timeout noticed it.
        string folder = await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http, log: new LineLogger(said.Add), policy: Quick);
        Assert.That(server.RangeHeaders, Is.EqualTo(new[] { null, "bytes=5000-" }));
        Assert.That(said, Has.Some.Contains("stalled: no data for 0.4 s after 5,000 bytes").And.Contains("retry 1 of 3"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "imagenette2-160.tgz")), Is.EqualTo(tgz));
        Assert.That(ImageFolder.Scan(folder, "train").Samples, Has.Count.EqualTo(9));
    }

    [Test]
    public void A_mirror_that_keeps_stalling_gives_up_after_the_retries_and_keeps_the_part()
    {
        byte[] tgz = TestData.ImagenetteTgz("imagenette2-160", Wnids, 3);
        using var server = new LoopbackServer { FailFirstWith5xx = 1, StallResponses = 99, StallAfter = 1_000 };
        server.Add("imagenette2-160.tgz", tgz);
        using var http = Download.NewClient();
        var said = new List<string>();
        Assert.That(async () => await Imagenette.EnsureAsync(Spec(tgz), dir, server.BaseUrl, http, log: new LineLogger(said.Add), policy: Quick),
            Throws.InstanceOf<UserError>().With.Message.Contains("stalled").And.Message.Contains("(4 tries)").And.Message.Contains("run again to resume"));
        var retries = said.Where(m => m.Contains("retry")).ToList();
        Assert.That(retries, Has.Count.EqualTo(3));
        Assert.That(retries[0], Does.Contain("HTTP 503"));
        Assert.That(server.RangeHeaders, Is.EqualTo(new[] { null, null, "bytes=1000-", "bytes=2000-" }), "each retry resumes");
        Assert.That(new FileInfo(Path.Combine(dir, "imagenette2-160.tgz.part")).Length, Is.EqualTo(3_000));
    }

    [Test]
    public void Unreachable_mirror_names_the_url_and_the_manual_step()
    {
        using var http = new HttpClient();
        var spec = Spec([1, 2, 3]);
        Assert.That(async () => await Imagenette.EnsureAsync(spec, dir, "http://127.0.0.1:9/", http),
            Throws.InstanceOf<UserError>().With.Message.Contains("http://127.0.0.1:9/imagenette2-160.tgz")
                .And.Message.Contains("place the archive by hand"));
    }

    public static IEnumerable<TestCaseData> EvilArchives()
    {
        yield return new TestCaseData((Action<TarWriter>)(t => TestData.AddFile(t, "../x", [1]))).SetName("Refuses_dotdot");
        yield return new TestCaseData((Action<TarWriter>)(t => TestData.AddFile(t, "ok/../../x", [1]))).SetName("Refuses_nested_dotdot");
        yield return new TestCaseData((Action<TarWriter>)(t => TestData.AddFile(t, "/abs/x", [1]))).SetName("Refuses_absolute");
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            TestData.AddFile(t, "a/file", [1]);
            t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "a/link") { LinkName = "../../outside" });
        })).SetName("Refuses_outside_symlink");
        yield return new TestCaseData((Action<TarWriter>)(t =>
            t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "a/link") { LinkName = "/etc/passwd" }))).SetName("Refuses_absolute_symlink");
        yield return new TestCaseData((Action<TarWriter>)(t =>
            t.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "a/dev")))).SetName("Refuses_device");
    }

    [TestCaseSource(nameof(EvilArchives))]
    public void Evil_archive_is_refused_and_nothing_lands(Action<TarWriter> write)
    {
        string data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        string archive = Path.Combine(dir, "evil.tgz");
        File.WriteAllBytes(archive, TestData.Tgz(write));
        Assert.That(() => SafeTar.ExtractTgz(archive, Path.Combine(data, "out")),
            Throws.InstanceOf<UserError>().With.Message.Contains("refusing"));
        Assert.That(Directory.EnumerateFileSystemEntries(data), Is.Empty, "nothing extracted, no temp folder left");
        Assert.That(Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "data", "evil.tgz" }));
        Assert.That(File.Exists("/abs/x"), Is.False);
    }

    static void Link(TarWriter t, string name, string target, TarEntryType type = TarEntryType.SymbolicLink) =>
        t.WriteEntry(new PaxTarEntry(type, name) { LinkName = target });

    /// <summary>
    /// Archives whose every name and link target is inside the folder as text, but not on disk: each link is judged
    /// by where its folder really is, so a chain of links reaches out of the target.
    /// </summary>
    public static IEnumerable<TestCaseData> LinkChains()
    {
        // l1 -> . makes l1/l2 -> .. live in the root, pointing at the root's parent; l1/l2/escaped lands there.
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            Link(t, "l1", ".");
            Link(t, "l1/l2", "..");
            TestData.AddFile(t, "l1/l2/escaped", [6, 6, 6]);
        })).SetName("Refuses_a_symlink_chain_out_of_the_folder");
        // A link, then a file of the same name: the file would be written through the link, over an outside file.
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            Link(t, "l1", ".");
            Link(t, "l1/victim", "../victim.txt");
            TestData.AddFile(t, "victim", [6, 6, 6]);
        })).SetName("Refuses_a_file_written_through_a_same_named_link");
        // A hard link to a symlink copies whatever the symlink reaches.
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            Link(t, "l1", ".");
            Link(t, "l1/secret", "../victim.txt");
            Link(t, "copy", "secret", TarEntryType.HardLink);
        })).SetName("Refuses_a_hard_link_to_a_symlink");
        // The same two, with links that point inside: still nothing is written or copied through a link.
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            TestData.AddFile(t, "f", [1]);
            Link(t, "same", "f");
            TestData.AddFile(t, "same", [6, 6, 6]);
        })).SetName("Refuses_a_file_after_an_inside_link_of_its_name");
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            TestData.AddFile(t, "f", [1]);
            Link(t, "s", "f");
            Link(t, "h", "s", TarEntryType.HardLink);
        })).SetName("Refuses_a_hard_link_to_an_inside_symlink");
        // Links made in an order that keeps each one inside when it is made; the second turns the first outward.
        yield return new TestCaseData((Action<TarWriter>)(t =>
        {
            Link(t, "a", "b/../victim.txt"); // inside while b is no link: root/victim.txt
            Link(t, "b", ".");                // now a reaches the root's parent: data/victim.txt
        })).SetName("Refuses_a_link_that_a_later_link_turns_outward");
    }

    [TestCaseSource(nameof(LinkChains))]
    public void Links_are_judged_on_disk_and_nothing_is_written_or_read_outside(Action<TarWriter> write)
    {
        string data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        string victim = Path.Combine(data, "victim.txt");
        File.WriteAllText(victim, "outside");
        string archive = Path.Combine(dir, "chain.tgz");
        File.WriteAllBytes(archive, TestData.Tgz(write));
        Assert.That(() => SafeTar.ExtractTgz(archive, Path.Combine(data, "out")),
            Throws.InstanceOf<UserError>().With.Message.Contains("refusing").And.Message.StartsWith(archive));
        Assert.That(File.ReadAllText(victim), Is.EqualTo("outside"), "the outside file is untouched");
        Assert.That(Directory.EnumerateFileSystemEntries(data).Select(Path.GetFileName), Is.EquivalentTo(new[] { "victim.txt" }),
            "nothing written next to the target, no temp folder left");
    }

    [Test]
    public void Links_are_judged_where_they_finally_live()
    {
        // Inside the archive's top folder the link reaches a sibling of that folder: inside the archive, but the top
        // folder is what becomes data/imagenette2-160, so the link would point into data/.
        byte[] tgz = TestData.Tgz(t =>
        {
            TestData.AddFile(t, "imagenette2-160/train/n01440764/a.JPEG", TestData.Jpeg(64, 48, 1));
            TestData.AddFile(t, "other/secret.txt", [1, 2, 3]);
            Link(t, "imagenette2-160/train/n01440764/b.JPEG", "../../../other/secret.txt");
        });
        string archive = Path.Combine(dir, "imagenette2-160.tgz");
        File.WriteAllBytes(archive, tgz);
        Assert.That(() => SafeTar.ExtractTgz(archive, Path.Combine(dir, "out"), only: "imagenette2-160"),
            Throws.InstanceOf<UserError>().With.Message.Contains("points outside"));
        Assert.That(Directory.Exists(Path.Combine(dir, "out")), Is.False);
        // Through the download command's own path: the archive placed by hand, extracted, and refused the same way.
        Assert.That(async () => await Imagenette.EnsureAsync(Spec(tgz), dir, "http://127.0.0.1:9/", new HttpClient()),
            Throws.InstanceOf<UserError>().With.Message.Contains("points outside"));
        Assert.That(Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "imagenette2-160.tgz" }));
    }

    [Test, Platform("Linux,MacOsX")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void File_modes_are_normalised_like_the_data_filter()
    {
        string archive = Path.Combine(dir, "modes.tgz");
        File.WriteAllBytes(archive, TestData.Tgz(t =>
        {
            foreach (var (name, mode) in new[] { ("world", 0b111_111_111), ("setuid", 0b100_111_101_101 | 0b111), ("private", 0) })
                t.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, DataStream = new MemoryStream([1]) });
        }));
        SafeTar.ExtractTgz(archive, Path.Combine(dir, "out"));
        UnixFileMode Mode(string n) => File.GetUnixFileMode(Path.Combine(dir, "out", n));
        Assert.That(Mode("world"), Is.EqualTo((UnixFileMode)0b111_101_101), "group and other lose write");
        Assert.That(Mode("setuid"), Is.EqualTo((UnixFileMode)0b111_101_101), "no setuid/setgid/sticky");
        Assert.That(Mode("private"), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite), "the owner can read and write");
    }

    [Test]
    public void Inside_symlink_is_kept()
    {
        string archive = Path.Combine(dir, "ok.tgz");
        File.WriteAllBytes(archive, TestData.Tgz(t =>
        {
            TestData.AddFile(t, "a/file", [7]);
            t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "a/b/link") { LinkName = "../file" });
        }));
        SafeTar.ExtractTgz(archive, Path.Combine(dir, "out"));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "out", "a", "b", "link")), Is.EqualTo(new byte[] { 7 }));
    }

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T> { public void Report(T value) => report(value); }
}
