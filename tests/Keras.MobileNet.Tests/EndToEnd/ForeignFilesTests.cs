using System.Diagnostics;

namespace Keras.MobileNet.Tests;

/// <summary>
/// Nothing the user did not make is touched: a fresh training refuses a folder of other files, removes only names it
/// writes itself, and never replaces a device, FIFO or folder with a file (issue 22, items 1 and 2).
/// </summary>
[Category("Slow")]
public sealed class ForeignFilesTests() : WithTempDir("km-foreign-")
{
    string Data => Path.Combine(dir, "data");

    string[] Train(string outDir, params string[] more) =>
        ["--dataset", "folder", "--data", Data, "--image-size", "32", "--epochs", "2", "--batch-size", "8",
         "--arch", "notebook", "--workers", "1", "--out", outDir, .. more.Contains("--width") ? more : [.. more, "--width", "0.25"]];

    void MakeData() => Synthetic.ShapesFolder(Data, classes: 2, trainPerClass: 6, valPerClass: 3, size: 32);

    /// <summary>Foreign files in every place a run, a sweep, plot and export write, with names that look like theirs.</summary>
    static readonly string[] Foreign =
    [
        "notes.tmp", "history.csv.bak", "curves.png.tmp", "best.pt", ".hidden", "checkpoints/resnet50-best.pt", "checkpoints/epoch-1.safetensors",
        "checkpoints/epoch-0001.safetensors.bak", "checkpoints/x.tmp", "tensorboard/events.out.tfevents.1700000000.host",
        "tensorboard/events.out.tfevents.0003.other", "tensorboard/.events-0003.tmp", "compare/mine.png",
    ];

    static Dictionary<string, byte[]> Seed(string folder)
    {
        var files = new Dictionary<string, byte[]>();
        int i = 0;
        foreach (var name in Foreign)
        {
            string path = Path.Combine(folder, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var bytes = System.Text.Encoding.UTF8.GetBytes($"the user's file {i++}: {name}\n");
            File.WriteAllBytes(path, bytes);
            files[path] = bytes;
        }
        return files;
    }

    static void Unchanged(Dictionary<string, byte[]> files)
    {
        foreach (var (path, bytes) in files)
        {
            Assert.That(File.Exists(path), $"{path} was removed");
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(bytes), $"{path} was changed");
        }
    }

    [Test]
    public void A_fresh_training_refuses_a_folder_of_other_files_and_leaves_it_as_it_was()
    {
        MakeData();
        string p = Path.Combine(dir, "p");
        var files = Seed(p);
        var before = Directory.GetFileSystemEntries(p, "*", SearchOption.AllDirectories).Order().ToList();
        var r = Cli.Run(dir, Train(p));
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Out + r.Err);
        Assert.That(r.Err.Trim(), Does.StartWith($"error: --out {p} is not empty and holds no run of this program").And.Contain("--reuse-out"));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(r.Out, Does.Not.Contain("estimate"), "refused before timing anything");
        Assert.That(Directory.GetFileSystemEntries(p, "*", SearchOption.AllDirectories).Order(), Is.EqualTo(before), "nothing created, nothing removed");
        Unchanged(files);
        // The current folder, as `--out .` would take it, is refused the same way.
        var dot = Cli.Run(p, Train("."));
        Assert.That((dot.ExitCode, dot.Err), Is.EqualTo((1, $"error: --out . is not empty and holds no run of this program (it has {Path.GetFileName(Directory.EnumerateFileSystemEntries(p).First())}); " +
            "train into a new or empty folder, or add --reuse-out to train beside its files (none of them is touched)\n")));
    }

    [Test]
    public void Training_resuming_sweeping_plotting_and_exporting_beside_foreign_files_leaves_every_one_byte_identical()
    {
        MakeData();
        string run = Path.Combine(dir, "run"), sweep = Path.Combine(dir, "sweep");
        var files = Seed(run);
        foreach (var kv in Seed(sweep)) files[kv.Key] = kv.Value;
        var trained = Cli.Run(dir, Train(run, "--reuse-out"));
        Assert.That(trained.ExitCode, Is.EqualTo(0), trained.Out + trained.Err);
        Assert.That(File.Exists(Path.Combine(run, "best.safetensors")));
        // A kill in epoch 2 (after epoch 1's commit), then --resume: the start sweeps the folder of what the kill left.
        string killed = Path.Combine(dir, "killed");
        foreach (var kv in Seed(killed)) files[kv.Key] = kv.Value;
        var psi = Cli.Start(dir, Train(killed, "--reuse-out"));
        psi.Environment["KM_FAULT_KILL_AT"] = "8";
        using (var k = Process.Start(psi)!) { k.StandardOutput.ReadToEnd(); k.WaitForExit(); Assert.That(k.ExitCode, Is.EqualTo(137)); }
        Assert.That(File.Exists(Path.Combine(killed, RunReader.State)), "epoch 1 was committed before the kill");
        var resumed = Cli.Run(dir, Train(killed, "--resume"));
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.Out + resumed.Err);
        var again = Cli.Run(dir, Train(run, "--resume"));
        Assert.That(again.ExitCode, Is.EqualTo(0), again.Out + again.Err);
        var swept = Cli.Run(dir, Train(sweep, "--width", "0.25,0.35"));
        Assert.That(swept.ExitCode, Is.EqualTo(0), swept.Out + swept.Err);
        var plotted = Cli.Run(dir, "plot", run, "--out", run);
        Assert.That(plotted.ExitCode, Is.EqualTo(0), plotted.Out + plotted.Err);
        var exported = Cli.Run(dir, "export", "--checkpoint", run, "--onnx", Path.Combine(run, "model.onnx"));
        Assert.That(exported.ExitCode, Is.EqualTo(0), exported.Out + exported.Err);
        Unchanged(files);
        Assert.That(Directory.GetFiles(dir, "*.tmp*", SearchOption.AllDirectories).Where(f => !files.ContainsKey(f)), Is.Empty, "no temp file of ours left");
    }

    [Test]
    public void Reusing_a_folder_that_holds_a_file_a_run_writes_is_refused()
    {
        MakeData();
        string p = Path.Combine(dir, "p");
        Directory.CreateDirectory(Path.Combine(p, "checkpoints"));
        File.WriteAllText(Path.Combine(p, "checkpoints", "epoch-0001.safetensors"), "someone else's");
        var r = Cli.Run(dir, Train(p, "--reuse-out"));
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: --reuse-out: {Path.Combine(p, "checkpoints", "epoch-0001.safetensors")} is already there and a run would replace it; move it or train into another --out")));
        Assert.That(File.ReadAllText(Path.Combine(p, "checkpoints", "epoch-0001.safetensors")), Is.EqualTo("someone else's"));
    }

    [Test]
    public void Resume_of_a_folder_that_does_not_exist_creates_nothing()
    {
        MakeData();
        string p = Path.Combine(dir, "nowhere");
        var r = Cli.Run(dir, Train(p, "--resume"));
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: --resume: {p} does not exist")));
        Assert.That(Directory.Exists(p), Is.False);
    }

    static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), $"{file}: {p.StandardError.ReadToEnd()}");
    }

    [Test]
    public void An_atomic_write_refuses_a_fifo_a_device_and_a_folder_and_writes_through_a_link()
    {
        string fifo = Path.Combine(dir, "fifo.onnx");
        Run("mkfifo", fifo);
        var targets = new List<string> { fifo, dir };
        if (Environment.UserName == "root") // a device node needs root (CI runs as root)
        {
            string dev = Path.Combine(dir, "fakenull");
            Run("mknod", "-m", "666", dev, "c", "1", "3");
            targets.Add(dev);
        }
        string toFifo = Path.Combine(dir, "to-fifo");
        File.CreateSymbolicLink(toFifo, fifo);
        targets.Add(toFifo);
        foreach (var t in targets)
        {
            var kind = FileKind.Of(t);
            Assert.That(() => AtomicFile.Write(t, tmp => File.WriteAllText(tmp, "x")),
                Throws.InstanceOf<UserError>().With.Message.Contains("exists and is not a regular file"), t);
            Assert.That(FileKind.Of(t), Is.EqualTo(kind), $"{t} is what it was");
        }
        Assert.That(Directory.GetFiles(dir, "*.tmp"), Is.Empty);
        // A link to a regular file: the file it points at gets the new bytes, the link stays a link.
        string real = Path.Combine(dir, "real.txt"), link = Path.Combine(dir, "link.txt");
        File.WriteAllText(real, "old");
        File.CreateSymbolicLink(link, real);
        AtomicFile.Write(link, tmp => File.WriteAllText(tmp, "new"));
        Assert.That(new FileInfo(link).LinkTarget, Is.EqualTo(real));
        Assert.That(File.ReadAllText(real), Is.EqualTo("new"));
        Assert.That(FileKind.Of(real), Is.EqualTo(PathKind.Regular));
    }

    [Test]
    public void Export_to_a_fifo_is_one_line_and_leaves_it_a_fifo()
    {
        MakeData();
        string run = Path.Combine(dir, "run");
        Assert.That(Cli.Run(dir, Train(run)).ExitCode, Is.EqualTo(0));
        string fifo = Path.Combine(dir, "out.onnx");
        Run("mkfifo", fifo);
        var r = Cli.Run(dir, "export", "--checkpoint", run, "--onnx", fifo);
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {fifo} exists and is not a regular file (a device, FIFO or socket); nothing was written to it")));
        Assert.That(FileKind.Of(fifo), Is.EqualTo(PathKind.Special));
    }
}
