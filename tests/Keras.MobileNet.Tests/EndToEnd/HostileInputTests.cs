using Keras.MobileNet.Cli;
using System.Diagnostics;

namespace Keras.MobileNet.Tests;

/// <summary>Odd or hostile inputs of the latest review (issue 22, items 5 to 17): each a clear result, never a poisoned folder or a hang.</summary>
[Category("Slow")]
public sealed class HostileInputTests
{
    string work = "";
    string Data => Path.Combine(work, "data");
    string Run => Path.Combine(work, "run");

    /// <summary>A small run's words; an option in <paramref name="more"/> replaces the default's value.</summary>
    string[] Train(string outDir, params string[] more)
    {
        var args = new List<string> { "--dataset", "folder", "--data", Data, "--image-size", "32", "--epochs", "2", "--batch-size", "8",
            "--width", "0.25", "--arch", "notebook", "--workers", "1", "--out", outDir };
        for (int i = 0; i < more.Length; i++)
        {
            int at = args.IndexOf(more[i]);
            if (at >= 0 && i + 1 < more.Length && !more[i + 1].StartsWith("--")) args[at + 1] = more[++i];
            else args.Add(more[i]);
        }
        return [.. args];
    }

    [OneTimeSetUp]
    public void MakeRun()
    {
        work = Directory.CreateTempSubdirectory("km-hostile-").FullName;
        Synthetic.ShapesFolder(Data, classes: 3, trainPerClass: 10, valPerClass: 4, size: 32);
        var r = Cli.Run(work, Train(Run));
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
    }

    [OneTimeTearDown] public void Remove() => Directory.Delete(work, true);

    static void Make(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, p.StandardError.ReadToEnd());
    }

    [Test]
    public void A_nan_first_epoch_leaves_a_folder_that_a_new_start_takes_over()
    {
        string r = Path.Combine(work, "nan");
        var bad = Cli.Run(work, Train(r, "--lr", "1e308"));
        Assert.That(bad.ExitCode, Is.EqualTo(1), bad.Out + bad.Err);
        Assert.That(bad.Out, Does.Contain("no epoch was committed").And.Contain("begins afresh"));
        Assert.That(File.Exists(Path.Combine(r, RunReader.State)), Is.False, "no state with zero epochs");
        var good = Cli.Run(work, Train(r));
        Assert.That(good.ExitCode, Is.Zero, good.Out + good.Err);
        Assert.That(RunReader.Completed(r), Is.Not.Null);
    }

    [Test]
    public void A_failed_cell_does_not_stop_the_sweep_and_merge_names_the_cells_left()
    {
        string s = Path.Combine(work, "nan-sweep");
        var bad = Cli.Run(work, Train(s, "--lr", "1e308", "--width", "0.25,0.35"));
        Assert.That(bad.ExitCode, Is.EqualTo(1), bad.Out + bad.Err);
        foreach (var cell in new[] { "notebook-w0.25-s0", "notebook-w0.35-s0" })
            Assert.That(bad.Out, Does.Contain($"{Path.Combine(s, cell)}: no epoch was committed"), "every cell was tried");
        var merge = Cli.Run(work, "sweep", "merge", "--arch", "notebook", "--width", "0.25,0.35", "--out", s);
        Assert.That(merge.ExitCode, Is.EqualTo(1), merge.Out + merge.Err);
        Assert.That(merge.Err, Does.StartWith($"error: 2 of 2 cells are not complete, first {Path.Combine(s, "notebook-w0.25-s0")} "));
    }

    [Test]
    public void Streaming_batches_cut_to_one_image_by_unreadable_files_are_left_out()
    {
        string data = Path.Combine(work, "cut");
        Synthetic.ShapesFolder(data, classes: 2, trainPerClass: 12, valPerClass: 3, size: 64);
        // PNGs cut after their header: the scan accepts them, the decode in the batch fails.
        foreach (var c in Directory.GetDirectories(Path.Combine(data, "train")))
            foreach (var f in Directory.GetFiles(c).Order().Skip(2))
                File.WriteAllBytes(f, File.ReadAllBytes(f)[..100]);
        var r = Cli.Run(work, ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "2", "--batch-size", "4", "--width", "0.25",
            "--arch", "notebook", "--workers", "1", "--in-memory", "false", "--out", Path.Combine(work, "cut-run")]);
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out + r.Err, Does.Not.Contain("NaN"));
    }

    [Test]
    public void Predict_reads_only_regular_files()
    {
        string zero = Path.Combine(work, "z.png"), fifo = Path.Combine(work, "f.png");
        if (!File.Exists(zero)) File.CreateSymbolicLink(zero, "/dev/zero");
        if (!File.Exists(fifo)) Make("mkfifo", fifo);
        foreach (var f in new[] { zero, fifo })
        {
            var r = Cli.Run(work, "predict", "--checkpoint", Run, f);
            Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {f} is not a readable image (not a regular file (a device, FIFO or socket); only regular files are read)")));
        }
    }

    [Test]
    public void A_fifo_in_an_image_folder_is_skipped_in_memory_and_streaming()
    {
        string data = Path.Combine(work, "with-fifo");
        Synthetic.ShapesFolder(data, classes: 2, trainPerClass: 4, valPerClass: 2, size: 32);
        string fifo = Path.Combine(data, "train", Path.GetFileName(Directory.GetDirectories(Path.Combine(data, "train"))[0]), "x.png");
        Make("mkfifo", fifo);
        foreach (var inMemory in new[] { "true", "false" })
        {
            var r = Cli.Run(work, ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.25",
                "--arch", "notebook", "--workers", "1", "--in-memory", inMemory, "--out", Path.Combine(work, $"fifo-{inMemory}")]);
            Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
            Assert.That(r.Out + r.Err, Does.Contain($"warning: skipped {fifo}: not a regular file"));
        }
    }

    [Test]
    public void The_estimate_probes_no_larger_batch_than_the_dataset_can_form()
    {
        var r = Cli.Run(work, Train(Path.Combine(work, "big-batch"), "--estimate-only", "--batch-size", "3000"));
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("(timed at batch 30: 30 train images are fewer than the batch size 3000, so no batch is larger)"));
    }
    /// <summary>A finished copy of a small run on its own copy of the data, in a folder under work.</summary>
    (string Folder, string Data) OwnRun(string name)
    {
        string home = Path.Combine(work, name), data = Path.Combine(home, "data"), run = Path.Combine(home, "run");
        Synthetic.ShapesFolder(data, classes: 3, trainPerClass: 6, valPerClass: 2, size: 32);
        var r = Cli.Run(home, ["--dataset", "folder", "--data", "data", "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--width", "0.25",
            "--arch", "notebook", "--workers", "1", "--out", run]);
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        return (run, data);
    }

    static string[] Resume(string run, string data, params string[] more) =>
        ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--width", "0.25",
         "--arch", "notebook", "--workers", "1", "--out", run, "--resume", .. more];

    [Test]
    public void Resume_compares_the_data_the_run_used_not_the_option_string()
    {
        var (run, data) = OwnRun("same-data");
        string home = Path.GetDirectoryName(run)!;
        // The same folder in other words: accepted.
        foreach (var words in new[] { "data", "./data/", data })
        {
            var same = Cli.Run(home, Resume(run, words));
            Assert.That(same.ExitCode, Is.Zero, $"{words}: {same.Out}{same.Err}");
        }
        // The same relative words from another directory name other images: refused, naming --data.
        string elsewhere = Path.Combine(home, "elsewhere");
        Synthetic.ShapesFolder(Path.Combine(elsewhere, "data"), classes: 3, trainPerClass: 6, valPerClass: 2, size: 32, seed: 9);
        var other = Cli.Run(elsewhere, Resume(run, "data"));
        Assert.That((other.ExitCode, other.Err.Trim()), Is.EqualTo((1, $"error: --resume: {run} was trained with --data {data}, not {Path.Combine(elsewhere, "data")}; " +
            "resume with the same options or train into another --out")));
        // Another precision is another run.
        var bf16 = Cli.Run(home, Resume(run, "data", "--precision", "bf16"));
        Assert.That(bf16.Err.Trim(), Does.Contain("was trained with --precision fp32, not bf16"));
    }

    [Test]
    public void Resume_refuses_renamed_classes_changed_images_and_a_missing_model_card()
    {
        var (run, data) = OwnRun("changed-data");
        string home = Path.GetDirectoryName(run)!;
        string circle = Path.Combine(data, "train", "circle"), val = Path.Combine(data, "val", "circle");
        Directory.Move(circle, Path.Combine(data, "train", "zcircle"));
        Directory.Move(val, Path.Combine(data, "val", "zcircle"));
        var renamed = Cli.Run(home, Resume(run, "data"));
        Assert.That(renamed.ExitCode, Is.EqualTo(1));
        Assert.That(renamed.Err, Does.Contain("was trained on the classes circle, square, triangle;").And.Contain("shifts the labels"));
        Directory.Move(Path.Combine(data, "train", "zcircle"), circle);
        Directory.Move(Path.Combine(data, "val", "zcircle"), val);
        string one = Directory.GetFiles(circle).Order().First();
        File.Move(one, one + ".moved.png");
        var changed = Cli.Run(home, Resume(run, "data"));
        Assert.That(changed.Err, Does.Contain("was trained on other images"));
        File.Move(one + ".moved.png", one);
        Assert.That(Cli.Run(home, Resume(run, "data")).ExitCode, Is.Zero, "the data as it was: accepted");
        File.Delete(Path.Combine(run, RunReader.Card));
        var noCard = Cli.Run(home, Resume(run, "data"));
        Assert.That((noCard.ExitCode, noCard.Err.Trim()), Is.EqualTo((1, $"error: --resume: {Path.Combine(run, RunReader.Card)} is missing: it says how to rebuild the run's network; restore it or train into another --out")));
    }
    public static IEnumerable<TestCaseData> Unchecked()
    {
        TestCaseData Case(string name, string message, params string[] args) => new TestCaseData(args, message).SetName(name);
        yield return Case("Early_stopping_negative", "--early-stopping must be 0 (off) or a number of epochs, not -1", "--early-stopping", "-1", "--estimate-only");
        yield return Case("Batch_size_int_max", "--batch-size must be 1 to 65536, not 2147483647", "--batch-size", "2147483647", "--estimate-only");
        yield return Case("Opset_99", "--opset must be 11 to 21", "export", "--checkpoint", "nowhere", "--onnx", "x.onnx", "--opset", "99");
        yield return Case("Export_batch_int_max", "--batch must be dynamic or 1 to 65536, not 2147483647", "export", "--checkpoint", "nowhere", "--onnx", "x.onnx", "--batch", "2147483647");
        yield return Case("Merge_width_twice", "--width lists a width twice", "sweep", "merge", "--width", "0.35,0.35", "--out", "s");
        yield return Case("Merge_seed_twice", "--seeds lists a seed twice", "sweep", "merge", "--width", "0.35", "--seeds", "0,0", "--out", "s");
        yield return Case("Plot_a_run_twice", "is given twice: each run counts once in a comparison", "plot", "run", "./run/");
    }

    [TestCaseSource(nameof(Unchecked))]
    public void Values_that_were_unchecked_are_one_usage_line(string[] args, string message)
    {
        var r = Cli.Run(work, args);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err.Trim(), Does.StartWith("error: ").And.Contain(message));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void A_task_index_from_slurm_without_out_is_refused()
    {
        var psi = Cli.Start(work, Train("unused", "--width", "0.25,0.35").Where(a => a is not ("--out" or "unused")).ToArray());
        psi.Environment["SLURM_ARRAY_TASK_ID"] = "1";
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.That((p.ExitCode, err.Trim()), Is.EqualTo((2, "error: $SLURM_ARRAY_TASK_ID is set, so this is one task of a sweep, but --out is not: every task would make " +
            "its own sweep folder; give --out SWEEP_DIR, the folder all tasks share")));
        Assert.That(Directory.Exists(Path.Combine(work, "reports")), Is.False);
    }

    /// <summary>A copy of the run's best weights and card, with one tensor changed by <paramref name="spoil"/>.</summary>
    string Spoiled(string name, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> spoil)
    {
        string folder = Path.Combine(work, name);
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(Run, RunReader.Card), Path.Combine(folder, RunReader.Card), true);
        var sd = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(Run, RunReader.Best));
        string file = Path.Combine(folder, "w.safetensors");
        TorchSharp.PyBridge.Safetensors.SaveStateDict(file, spoil(sd));
        return file;
    }

    [Test]
    public void Non_finite_or_mistyped_weights_and_cards_are_refused_naming_the_tensor_or_field()
    {
        string image = Directory.GetFiles(Path.Combine(Data, "val"), "*.png", SearchOption.AllDirectories).Order().First();
        const string key = "features.1.conv.0.0.weight";
        var nan = Spoiled("nan-weights", sd => { sd[key] = sd[key].clone().fill_(double.NaN); return sd; });
        var r = Cli.Run(work, "predict", "--checkpoint", nan, image);
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {nan}: tensor '{key}' holds NaN or infinite values")));
        var u8 = Spoiled("u8-weights", sd => { sd[key] = sd[key].to(ScalarType.Byte); return sd; });
        r = Cli.Run(work, "predict", "--checkpoint", u8, image);
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {u8}: tensor '{key}' is Byte, not floating point")));
        // Two tensors over the same bytes: refused from the header.
        var overlap = Path.Combine(work, "overlap.safetensors");
        var header = System.Text.Encoding.UTF8.GetBytes("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""");
        File.WriteAllBytes(overlap, [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. new byte[12]]);
        Assert.That(() => Checkpoints.CheckSafetensors(overlap), Throws.InstanceOf<UserError>().With.Message.EqualTo(
            $"{overlap} is not a readable safetensors checkpoint: tensors 'a' and 'b' share bytes (overlapping data_offsets)"));
        // A model card whose mean is NaN, and one whose image size would need gigabytes.
        string card = Path.Combine(Path.GetDirectoryName(nan)!, RunReader.Card);
        string text = File.ReadAllText(Path.Combine(Run, RunReader.Card));
        File.WriteAllText(card, System.Text.RegularExpressions.Regex.Replace(text, "\"mean\": \\[[^\\]]*\\]", "\"mean\": [\"NaN\", 0.5, 0.5]"));
        string good = Path.Combine(Path.GetDirectoryName(nan)!, "good.safetensors");
        File.Copy(Path.Combine(Run, RunReader.Best), good, true);
        r = Cli.Run(work, "predict", "--checkpoint", good, image);
        Assert.That(r.Err.Trim(), Does.EndWith("mean and std must be finite numbers"));
        File.WriteAllText(card, System.Text.RegularExpressions.Regex.Replace(text, "\"image_size\": \\d+", "\"image_size\": 9000"));
        r = Cli.Run(work, "predict", "--checkpoint", good, image);
        Assert.That(r.Err.Trim(), Does.EndWith("image_size is 9000, not 32 to 2048"));
    }

    [Test]
    public void An_onnx_file_that_is_not_the_card_s_classifier_is_refused()
    {
        string onnx = Path.Combine(work, "m.onnx"), bad = Path.Combine(work, "identity.onnx");
        Assert.That(Cli.Run(work, "export", "--checkpoint", Run, "--onnx", onnx).ExitCode, Is.Zero);
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
        model.Graph.Output.Clear();
        model.Graph.Output.Add(model.Graph.Input[0].Clone()); // the output is the input: "probabilities" of pixels
        model.Graph.Node.Clear();
        model.Graph.Initializer.Clear();
        File.WriteAllBytes(bad, Google.Protobuf.MessageExtensions.ToByteArray(model));
        string image = Directory.GetFiles(Path.Combine(Data, "val"), "*.png", SearchOption.AllDirectories).Order().First();
        var r = Cli.Run(work, "predict", "--onnx", bad, image);
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {bad} is not a classifier of its model card: it has no output 'logits'")));
    }
    /// <summary>Runs the Train program in a private mount namespace after <paramref name="mount"/> (shell words), as root.</summary>
    static Cli.Result InMountNamespace(string workDir, string mount, params string[] args)
    {
        if (Environment.UserName != "root") Assert.Ignore("needs root for a mount namespace (CI runs as root)");
        string command = $"{mount} && exec dotnet {SweepScripts.Quote(Cli.TrainDll)} {string.Join(' ', args.Select(SweepScripts.Quote))}";
        var psi = new ProcessStartInfo("unshare", ["-m", "sh", "-c", command]) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return new Cli.Result(p.ExitCode, output, err.Result);
    }

    [Test]
    public void A_read_only_run_folder_and_a_full_disk_are_one_line_not_an_internal_error()
    {
        string q = SweepScripts.Quote(Run);
        var ro = InMountNamespace(work, $"mount --bind {q} {q} && mount -o remount,ro,bind {q}", Train(Run, "--resume"));
        Assert.That(ro.ExitCode, Is.EqualTo(1), ro.Out + ro.Err);
        Assert.That(ro.Err.Trim(), Does.StartWith($"error: {Run} is not writable here").And.Not.Contain("in use"));
        string small = Path.Combine(work, "small-disk");
        Directory.CreateDirectory(small);
        var full = InMountNamespace(work, $"mount -t tmpfs -o size=200k tmpfs {SweepScripts.Quote(small)}", Train(Path.Combine(small, "run")));
        Assert.That(full.ExitCode, Is.EqualTo(1), full.Out + full.Err);
        Assert.That(full.Err.Trim(), Does.Contain("No space left on device").And.Not.Contain("internal error"));
        Assert.That(full.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void Escape_sequences_in_class_names_never_reach_the_terminal_and_a_file_url_is_refused()
    {
        string data = Path.Combine(work, "escapes");
        Synthetic.ShapesFolder(data, classes: 2, trainPerClass: 4, valPerClass: 2, size: 32);
        foreach (var split in new[] { "train", "val" })
            Directory.Move(Path.Combine(data, split, "circle"), Path.Combine(data, split, "circle\u001b[2J\u001b]0;pwned\u0007"));
        var r = Cli.Run(work, ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.25",
            "--arch", "notebook", "--workers", "1", "--out", Path.Combine(work, "escapes-run")]);
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out + r.Err, Does.Not.Contain("\u001b").And.Not.Contain("\u0007"));
        Assert.That(r.Out, Does.Contain("circle\\x1B[2J"));
        var url = Cli.Run(work, Train(Path.Combine(work, "url"), "--base-url", "file:///etc/", "--dataset", "imagenette"));
        Assert.That((url.ExitCode, url.Err.Trim()), Is.EqualTo((2, "error: --base-url must be an http:// or https:// address, not 'file:///etc/'")));
    }

    [Test]
    public void Figure_temp_files_of_a_killed_drawing_are_removed_and_no_other()
    {
        string dir = Path.Combine(work, "figures");
        Directory.CreateDirectory(dir);
        string stale = Path.Combine(dir, "curves.png.2147483000.tmp.png"), foreign = Path.Combine(dir, "mine.png.123.tmp.png"),
            foreignName = Path.Combine(dir, "notes.tmp");
        foreach (var f in new[] { stale, foreign, foreignName }) File.WriteAllText(f, "x");
        var r = Cli.Run(work, "plot", Run, "--out", dir);
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(File.Exists(stale), Is.False, "a temp file of a figure this command draws, its process gone");
        Assert.That(File.Exists(foreign) && File.Exists(foreignName), "files of other names are not ours");
    }

    [Test]
    public void A_cell_finished_by_another_process_meanwhile_is_skipped_and_the_sweep_still_compares()
    {
        string s = Path.Combine(work, "race");
        string[] sweep = Train(s, "--width", "0.25,0.35", "--epochs", "1");
        using var first = Process.Start(Cli.Throttled(500, work, sweep))!;
        var err = first.StandardError.ReadToEndAsync();
        string? line;
        while ((line = first.StandardOutput.ReadLine()) is not null && !line.StartsWith("Epoch 1/1:", StringComparison.Ordinal)) { }
        // The first process is stopped (SIGSTOP) inside cell 0 while a second one trains cell 1 to the end, then goes on.
        Make("kill", "-STOP", $"{first.Id}");
        Cli.Result second;
        try { second = Cli.Run(work, [.. sweep, "--task-index", "1"]); }
        finally { Make("kill", "-CONT", $"{first.Id}"); }
        Assert.That(second.ExitCode, Is.Zero, second.Out + second.Err);
        string rest = first.StandardOutput.ReadToEnd();
        first.WaitForExit();
        Assert.That(first.ExitCode, Is.Zero, rest + err.Result);
        Assert.That(rest, Does.Contain($"{Path.Combine(s, "notebook-w0.35-s0")}: completed meanwhile by another process, skipped"));
        Assert.That(File.Exists(Path.Combine(s, "report.md")), "the comparison is drawn");
    }
    /// <summary>A copy of the finished run to spoil.</summary>
    string CopyOfRun(string name)
    {
        string to = Path.Combine(work, name);
        foreach (var f in Directory.GetFiles(Run, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(RunFolder.LockName)))
        {
            string dest = Path.Combine(to, Path.GetRelativePath(Run, f));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(f, dest);
        }
        return to;
    }

    [Test]
    public void Resume_checks_the_options_before_any_download_and_refuses_a_file_as_out()
    {
        var r = Cli.Run(work, Train(Run, "--resume", "--dataset", "imagenette", "--base-url", "http://127.0.0.1:9/"));
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: --resume: {Run} was trained with --dataset folder, not imagenette; " +
            "resume with the same options or train into another --out")));
        Assert.That(r.Out, Does.Not.Contain("downloading"));
        string file = Path.Combine(work, "a-file");
        File.WriteAllText(file, "mine");
        var f = Cli.Run(work, Train(file));
        Assert.That((f.ExitCode, f.Err.Trim()), Is.EqualTo((1, $"error: --out {file} is a file, not a folder")));
        Assert.That(File.ReadAllText(file), Is.EqualTo("mine"));
    }

    [Test]
    public void A_garbage_optimizer_state_and_a_nan_best_accuracy_are_one_printable_line()
    {
        string run = CopyOfRun("garbage");
        string opt = Directory.GetFiles(Path.Combine(run, "checkpoints"), "*.optimizer.bin").Single();
        File.WriteAllBytes(opt, [.. Enumerable.Range(0, 32).Select(i => (byte)i), 0xFF, 0xFE, .. "\u001b[31mred"u8.ToArray()]);
        var r = Cli.Run(work, Train(run, "--resume"));
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Out + r.Err);
        Assert.That(r.Err.Trim(), Does.StartWith($"error: {opt} is not a readable optimizer state"));
        Assert.That(r.Err.Trim().Where(char.IsControl), Is.Empty, "no raw control bytes reach the terminal");
        // A name with an escape sequence in an error line is shown, not obeyed.
        string odd = Path.Combine(work, "x\u001b]0;pwned\u0007\u001b[2J.png");
        var e = Cli.Run(work, "predict", "--checkpoint", Run, odd);
        Assert.That(e.ExitCode, Is.EqualTo(1), e.Out + e.Err);
        Assert.That(e.Err.Trim(), Does.Contain("x\\x1B]0;pwned\\x07\\x1B[2J.png"));
        Assert.That(e.Err.Trim().Where(char.IsControl), Is.Empty);
        string state = Path.Combine(CopyOfRun("nan-best"), RunReader.State);
        File.WriteAllText(state, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(state), "\"best_val_accuracy\": [^,]+,", "\"best_val_accuracy\": \"NaN\","));
        var nan = Cli.Run(work, Train(Path.GetDirectoryName(state)!, "--resume"));
        Assert.That((nan.ExitCode, nan.Err.Trim()), Is.EqualTo((1, $"error: {state}: best_val_accuracy is NaN, not an accuracy")));
    }

    [Test]
    public void A_pth_whose_entry_declares_gigabytes_is_refused_before_unpacking()
    {
        string pth = Path.Combine(work, "bomb.pth");
        using (var zip = System.IO.Compression.ZipFile.Open(pth, System.IO.Compression.ZipArchiveMode.Create))
        {
            foreach (var (name, bytes) in new[] { ("archive/data.pkl", new byte[] { 0x80, 0x02, 0x7D, 0x71, 0x00, 0x2E }), ("archive/data/0", new byte[4096]) })
                using (var e = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.Optimal).Open()) e.Write(bytes);
        }
        // Declare 2,000,000,000 bytes for archive/data/0 in its local header and in the central directory, as a zip bomb does.
        var b = File.ReadAllBytes(pth);
        var name0 = "archive/data/0"u8.ToArray();
        for (int i = 0; i + 4 < b.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(b, i);
            var (offset, nameAt) = sig switch { 0x04034b50 => (22, 30), 0x02014b50 => (24, 46), _ => (-1, -1) };
            if (offset < 0 || i + nameAt + name0.Length > b.Length || !b.AsSpan(i + nameAt, name0.Length).SequenceEqual(name0)) continue;
            BitConverter.GetBytes(2_000_000_000u).CopyTo(b, i + offset);
        }
        File.WriteAllBytes(pth, b);
        Assert.That(new FileInfo(pth).Length, Is.LessThan(10_000));
        Assert.That(() => Pretrained.Read(pth), Throws.InstanceOf<UserError>().With.Message.EqualTo(
            $"--weights: {pth} declares 2,000,000,000 bytes unpacked (entry archive/data/0), over the 536,870,912-byte limit for a state dict"));
    }

    [Test]
    public void A_confusion_of_many_classes_is_kept_as_counts_not_drawn()
    {
        string run = CopyOfRun("many-classes");
        int n = Keras.MobileNet.Reports.Report.MaxConfusionClasses + 1;
        var counts = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Select(j => i == j ? 1L : 0L).ToArray()).ToArray();
        Files.WriteJson(Path.Combine(run, RunReader.Confusion), new ConfusionData([.. Enumerable.Range(0, n).Select(i => $"c{i}")], counts));
        File.Delete(Path.Combine(run, "confusion.png"));
        var r = Cli.Run(work, "plot", run);
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(File.Exists(Path.Combine(run, "confusion.png")), Is.False);
        Assert.That(File.Exists(Path.Combine(run, "curves.png")));
    }
    [Test]
    public void A_large_compressible_image_is_kept_encoded_and_decoded_by_rows_to_the_same_pixels()
    {
        string root = Path.Combine(work, "large");
        string file = Path.Combine(root, "train", "a", "big.png");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        using (var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(3000, 3100))
        {
            img.ProcessPixelRows(a =>
            {
                for (int y = 0; y < a.Height; y++)
                {
                    var row = a.GetRowSpan(y);
                    for (int x = 0; x < row.Length; x++) row[x] = new((byte)(x / 97 * 7), (byte)(y / 131 * 5), (byte)((x + y) / 500 * 40));
                }
            });
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, file);
        }
        var expected = new byte[3000 * 3100 * 3];
        using (var again = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(file)) again.CopyPixelDataTo(expected);
        var decoded = ImageOps.DecodeFile(file); // 9.3 MP: decoded a band of rows at a time
        Assert.That(decoded.Pixels, Is.EqualTo(expected));
        Directory.CreateDirectory(Path.Combine(root, "train", "b"));
        File.Copy(file, Path.Combine(root, "train", "b", "big.png"));
        var ds = InMemoryDataset.Build(ImageFolder.Scan(root, "train"), new TrainTransform(TransformConfig.For(32)), new BadImageLog(), 2);
        Assert.That(ds.Bytes, Is.EqualTo(2 * new FileInfo(file).Length), "kept as the files' bytes (27.9 MB each decoded)");
        Assert.That(ds.Prepared(0)!.Pixels, Is.EqualTo(expected), "served decoded, the same pixels");
    }
    /// <summary>Another valid value for each run-defining option of the table (a row without one fails the test below).</summary>
    static readonly Dictionary<string, string> OtherValue = new()
    {
        ["--width"] = "0.35", ["--arch"] = "paper", ["--dataset"] = "imagenette", ["--data"] = "/elsewhere", ["--image-size"] = "40",
        ["--epochs"] = "3", ["--batch-size"] = "9", ["--lr"] = "0.002", ["--min-lr"] = "1e-5", ["--weight-decay"] = "0.01",
        ["--label-smoothing"] = "0.2", ["--schedule"] = "step", ["--warmup-epochs"] = "0.5", ["--early-stopping"] = "4", ["--seed"] = "7",
        ["--dropout"] = "0.3", ["--weights"] = "/elsewhere/w.safetensors", ["--unfreeze-epoch"] = "1", ["--unfreeze-from"] = "5",
        ["--bn-mode"] = "train", ["--fine-tune-lr"] = "1e-4", ["--precision"] = "bf16",
    };

    [Test]
    public void Resume_with_another_value_of_any_run_defining_option_of_the_table_is_refused_naming_it()
    {
        var rows = TrainCommand.OptionRows().Where(r => r.Defines is not null).ToList();
        Assert.That(rows.Select(r => r.Defines), Is.EquivalentTo(TrainOptions.RunDefining.Select(f => f.Field)), "the table marks the fields the library compares");
        // --size defines an Imagenette run only; this run is an image folder, so the option is the same "(default)" both ways.
        foreach (var (word, _) in rows.Where(r => r.Word != "--size"))
        {
            Assert.That(OtherValue.ContainsKey(word), $"{word}: give this test another value for it");
            var r = Cli.Run(work, Train(Run, "--resume", word, OtherValue[word]));
            Assert.That(r.ExitCode, Is.EqualTo(1), $"{word}: {r.Out}{r.Err}");
            Assert.That(r.Err.Trim(), Does.StartWith($"error: --resume: {Run} was trained with {word} "), word);
        }
    }
}
