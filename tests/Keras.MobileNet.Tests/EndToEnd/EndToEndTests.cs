using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

/// <summary>The Train program on a generated, learnable image folder (4 shape classes, 48 px), on the CPU.</summary>
[NonParallelizable]
[Category("Slow")] // starts the Train program, a terminal or a server
public class EndToEndTests
{
    string work = "";
    string Data => Path.Combine(work, "shapes");

    // The notebook preset at width 0.35 learns these shapes in a few epochs (measured: 100% val accuracy by epoch 5).
    string[] Recipe(string outDir, int epochs = 6, string lr = "3e-3") =>
        ["--dataset", "folder", "--data", Data, "--image-size", "48", "--epochs", $"{epochs}", "--batch-size", "16",
         "--width", "0.35", "--arch", "notebook", "--lr", lr, "--workers", "2", "--out", outDir];

    [OneTimeSetUp]
    public void MakeData()
    {
        work = Directory.CreateTempSubdirectory("km-e2e").FullName;
        Synthetic.ShapesFolder(Data, classes: 4, trainPerClass: 60, valPerClass: 20, size: 48);
    }

    [OneTimeTearDown] public void Remove() => Directory.Delete(work, true);

    [Test]
    public void Trains_to_an_accuracy_chance_cannot_reach_and_writes_every_file()
    {
        var r = Cli.Run(work, Recipe("run"));
        Assert.That(r.ExitCode, Is.Zero, r.Err + r.Out);
        string run = Path.Combine(work, "run");
        Assert.That(r.Out, Does.Contain("Epoch 6/6 -"));
        // The estimate is printed before training and set beside the time training took. How close they are depends on
        // what else the machine runs, so it is a benchmark's figure (bench estimate), not an assertion here.
        // Durations print as 45.4s, or as 1:15 from a minute on (a slow machine's estimate crossed it in CI).
        var times = System.Text.RegularExpressions.Regex.Match(r.Out, @"trained for ([\d:.]+)s? \(estimated ([\d:.]+)s?\)");
        Assert.That(times.Success, r.Out);
        static double Seconds(string t) => t.Split(':').Aggregate(0.0, (acc, part) => acc * 60 + double.Parse(part, CultureInfo.InvariantCulture));
        Assert.That(Seconds(times.Groups[2].Value), Is.GreaterThan(0));
        Assert.That(r.Out, Does.Contain("estimate: about ").And.Contain("240 train + 80 val images, batch 16, 48 px) on cpu"));

        var rows = HistoryRow.ReadCsv(Path.Combine(run, "history.csv"));
        Assert.That(rows.Select(x => x.Epoch), Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6 }));
        Assert.That(File.ReadLines(Path.Combine(run, "history.csv")).First(),
            Is.EqualTo("epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_top5,lr,seconds"));
        // 4 balanced classes, 80 val images: chance is 25% with a standard deviation of about 5%; 70% is 9 deviations
        // above it (p < 1e-15), so only a network that learned the shapes gets there.
        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
        double best = summary.GetProperty("best_val_accuracy").GetDouble();
        Assert.That(best, Is.GreaterThanOrEqualTo(0.70));
        Assert.That(rows[^1].TrainLoss, Is.LessThan(rows[0].TrainLoss));
        Assert.That(rows[0].Lr, Is.EqualTo(3e-3).Within(1e-12));
        Assert.That(rows[3].Lr, Is.EqualTo(Schedules.CosineAnnealing(3e-3, 3e-5, 6)(3)).Within(1e-12));
        foreach (var key in new[] { "arch", "width", "classes", "image_size", "params", "macs", "best_epoch", "final_val_accuracy",
                     "train_seconds", "images_per_second", "device", "seed", "options" })
            Assert.That(summary.TryGetProperty(key, out _), key);
        // The default --latency fp32: the float32 latency only.
        Assert.That((summary.GetProperty("latency").GetProperty("engine").GetString(), summary.GetProperty("int8_latency").ValueKind),
            Is.EqualTo(("onnxruntime-cpu-fp32", JsonValueKind.Null)));
        Assert.That(summary.GetProperty("params").GetInt64(), Is.GreaterThan(100_000));
        Assert.That(JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "history.json"))).RootElement.GetArrayLength(), Is.EqualTo(6));
        var card = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "model.json"))).RootElement;
        Assert.That(card.GetProperty("class_names").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "circle", "ring", "square", "triangle" }));
        Assert.That(card.GetProperty("mean").GetArrayLength(), Is.EqualTo(3));
        foreach (var f in new[] { "best.safetensors", "last.safetensors" })
        {
            var sd = Safetensors.LoadStateDict(Path.Combine(run, f));
            // torchvision's 314 entries, plus the notebook's expand conv + BN in block 1 (6) and a bias on each of its 53 convs.
            Assert.That(sd, Has.Count.EqualTo(314 + 6 + 53), f);
            Assert.That(sd.ContainsKey("features.0.0.weight") && sd.ContainsKey("classifier.1.bias"));
        }
        Assert.That(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents.*"), Is.Not.Empty);
        Assert.That(Directory.GetFiles(run, "*.tmp"), Is.Empty, "no half-written files");

        // evaluate reproduces the best val accuracy exactly; predict agrees with evaluation on a val image.
        var ev = Cli.Run(work, "evaluate", "--checkpoint", run, "--json");
        Assert.That(ev.ExitCode, Is.Zero, ev.Err);
        var evj = JsonDocument.Parse(ev.Out).RootElement;
        Assert.That(evj.GetProperty("top1").GetDouble(), Is.EqualTo(best));
        // ... and the val loss history.csv has for that epoch: the run's label smoothing (0.1), not plain cross-entropy.
        var bestRow = rows.Single(row => row.Epoch == JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement.GetProperty("best_epoch").GetInt32());
        Assert.That(evj.GetProperty("loss").GetDouble(), Is.EqualTo(bestRow.ValLoss!.Value).Within(1e-4));
        var confusion = evj.GetProperty("confusion").EnumerateArray().Select(r => r.EnumerateArray().Select(c => c.GetInt64()).ToArray()).ToArray();
        Assert.That(confusion.Sum(r => r.Sum()), Is.EqualTo(80));
        string image = Directory.GetFiles(Path.Combine(Data, "val", "square")).Order().First();
        var pr = Cli.Run(work, "predict", "--checkpoint", run, image, "--json", "--top", "2");
        Assert.That(pr.ExitCode, Is.Zero, pr.Err);
        Assert.That(pr.Err, Does.Not.Contain("NNPACK"), "libtorch's per-convolution NNPACK warning is not shown (36 lines before)");
        var pj = JsonDocument.Parse(pr.Out).RootElement[0];
        Assert.That(pj.GetProperty("logits").GetArrayLength(), Is.EqualTo(4));
        Assert.That(pj.GetProperty("top").GetArrayLength(), Is.EqualTo(2));
        string predicted = pj.GetProperty("top")[0].GetProperty("class").GetString()!;
        // The evaluation's confusion row for "square" (label 2) says where its images went; at 100% they all went to square.
        int evaluatedAs = Array.IndexOf(confusion[2], confusion[2].Max());
        if (confusion[2].Max() == 20) Assert.That(predicted, Is.EqualTo("square"));
        else Assert.That(new[] { "circle", "ring", "square", "triangle" }, Does.Contain(predicted));
        Assert.That(evaluatedAs, Is.InRange(0, 3));
    }

    [Test]
    public void Estimate_only_on_the_default_recipe_needs_no_download_and_suggests_a_shorter_one()
    {
        // The default recipe (Imagenette full, 100 epochs) except a 128 px crop, so the probe takes seconds: still hours here
        // (at 64 px a fast moment of this machine, with the multi-tensor AdamW, estimated 53 minutes: no suggestion).
        string data = Path.Combine(work, "no-imagenette");
        var r = Cli.Run(work, "--width", "0.5", "--image-size", "128", "--data", data, "--base-url", "http://127.0.0.1:9/", "--estimate-only");
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Match(@"estimate: about \d+(d \d+h|:\d\d:\d\d) for 1 width\(s\) x 100 epochs \(9,469 train \+ 3,925 val images, batch 64, 128 px\) on cpu"));
        var suggestion = r.Out.Split('\n').Single(l => l.StartsWith("that is long for a CPU"));
        Assert.That(suggestion, Does.Match(@"dotnet run --project src/Train -- --width 0\.5 --image-size \d+ --data \S+ --base-url http://127.0.0.1:9/ --epochs \d+ --size 160$"));
        Assert.That(Directory.Exists(data), Is.False, "nothing downloaded, no folder made");
    }

    [Test]
    public void Killed_in_epoch_3_then_resumed_gives_the_uninterrupted_history()
    {
        string straight = Path.Combine(work, "straight"), killed = Path.Combine(work, "killed");
        var full = Cli.Run(work, Recipe(straight, 4));
        Assert.That(full.ExitCode, Is.Zero, full.Err);

        using (var p = Process.Start(Cli.Throttled(120, work, [.. Recipe(killed, 4)]))!)
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null && !line.StartsWith("Epoch 3/4:")) { }
            Assert.That(line, Is.Not.Null, "the run reached epoch 3");
            Thread.Sleep(700); // a few batches into epoch 3
            p.Kill(entireProcessTree: true); // SIGKILL
            p.WaitForExit();
        }
        var partial = HistoryRow.ReadCsv(Path.Combine(killed, "history.csv"));
        Assert.That(partial.Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2 }), "killed mid epoch 3");

        var resumed = Cli.Run(work, [.. Recipe(killed, 4), "--resume"]);
        Assert.That(resumed.ExitCode, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("resuming"));
        // Every column but wall-clock seconds, to the last printed digit.
        static string[] WithoutSeconds(string path) => File.ReadAllLines(path).Select(l => l[..l.LastIndexOf(',')]).ToArray();
        Assert.That(WithoutSeconds(Path.Combine(killed, "history.csv")), Is.EqualTo(WithoutSeconds(Path.Combine(straight, "history.csv"))));
        // TensorBoard: each epoch in one whole file, once, with the uninterrupted run's values.
        static List<string> Events(string run) => Directory.GetFiles(Path.Combine(run, "tensorboard")).Order(StringComparer.Ordinal)
            .SelectMany(f => EventFile.Read(f).Where(e => e.Tag != "train/seconds").Select(e => $"{Path.GetFileName(f)} {e.Step} {e.Tag} {e.Value:R}"))
            .ToList();
        Assert.That(Directory.GetFiles(Path.Combine(killed, "tensorboard")).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Is.EqualTo(Enumerable.Range(1, 4).Select(EventFile.Name)));
        Assert.That(Events(killed), Is.EqualTo(Events(straight)).And.Count.EqualTo(4 * 6));
    }

    [Test]
    public void Nan_loss_stops_with_epoch_and_batch_exit_1_and_commits_nothing()
    {
        string run = Path.Combine(work, "nan");
        var r = Cli.Run(work, Recipe(run, 3, lr: "1e30"));
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Out + r.Err);
        Assert.That(r.Out + r.Err, Does.Match("NaN or infinite at epoch 1, batch [0-9]+"));
        Assert.That(File.Exists(Path.Combine(run, "last.safetensors")), Is.False, "a NaN epoch commits no weights");
        Assert.That(Directory.Exists(Path.Combine(run, "checkpoints")) ? Directory.GetFiles(Path.Combine(run, "checkpoints")) : [], Is.Empty);
        Assert.That(JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement.GetProperty("stop_reason").GetString(),
            Does.Contain("NaN"));
    }

    [Test]
    public void Resume_checks_the_run_before_writing_and_one_folder_holds_one_run()
    {
        string run = Path.Combine(work, "guarded");
        var first = Cli.Run(work, Recipe(run, 1));
        Assert.That(first.ExitCode, Is.Zero, first.Err);
        var before = Directory.GetFiles(run).Where(f => !f.EndsWith(".lock")).Order().ToDictionary(f => f, File.ReadAllBytes);

        // Another lr, another width, another image size: refused, naming the option, and nothing is touched.
        foreach (var (option, value, stored) in new[] { ("--lr", "0.001", "0.003"), ("--width", "0.5", "0.35"), ("--image-size", "40", "48") })
        {
            var args = Recipe(run, 1).ToList();
            int at = args.IndexOf(option);
            if (at >= 0) args[at + 1] = value; else args.AddRange([option, value]);
            var r = Cli.Run(work, [.. args, "--resume"]);
            Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: --resume: {run} was trained with {option} {stored}, not {value}; " +
                "resume with the same options or train into another --out")), r.Out);
            foreach (var (f, bytes) in before) Assert.That(File.ReadAllBytes(f), Is.EqualTo(bytes), $"{option}: {f} untouched");
        }
        string never = Path.Combine(work, "never-trained");
        var missing = Cli.Run(work, [.. Recipe(never, 1), "--resume"]);
        Assert.That((missing.ExitCode, missing.Err.Trim()), Is.EqualTo((1, $"error: --resume: {never} does not exist")));
        Assert.That(Directory.Exists(never), Is.False, "a --resume of nothing creates nothing");
        Directory.CreateDirectory(never);
        var empty = Cli.Run(work, [.. Recipe(never, 1), "--resume"]);
        Assert.That((empty.ExitCode, empty.Err.Trim()), Is.EqualTo((1, $"error: --resume: {never} holds no run to resume (no trainer_state.json)")));
        Assert.That(Directory.EnumerateFileSystemEntries(never), Is.Empty, "nothing written into it");

        // Two trainings into one folder: the second stops at once while the first holds it.
        string shared = Path.Combine(work, "contended");
        using var p = Process.Start(Cli.Throttled(200, work, [.. Recipe(shared, 2)]))!;
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null && !line.StartsWith("Epoch 1/2:")) { }
        var second = Cli.Run(work, Recipe(shared, 2));
        p.Kill(entireProcessTree: true);
        p.WaitForExit();
        Assert.That((second.ExitCode, second.Err.Trim()), Is.EqualTo((1, $"error: {shared} is in use by another training (its .lock is held); wait for it or use another --out")));
    }

    [Test]
    public void A_last_batch_of_one_image_is_dropped_and_nothing_becomes_nan()
    {
        // 16 images in batches of 5 at 32 px: the last batch of one gave BatchNorm one value per channel, NaN running
        // variances, a NaN model saved as best and NaN probabilities from predict, with exit 0.
        string data = Path.Combine(work, "sixteen");
        Synthetic.ShapesFolder(data, classes: 2, trainPerClass: 8, valPerClass: 4, size: 40);
        string run = Path.Combine(work, "drop-last");
        var r = Cli.Run(work, "--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "2", "--batch-size", "5", "--width", "0.35",
            "--workers", "2", "--out", run, "--latency", "none");
        Assert.That(r.ExitCode, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("note: 16 train images in batches of 5 leave a last batch of one image"));
        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "summary.json"))).RootElement;
        Assert.That((summary.GetProperty("latency").ValueKind, r.Out.Contains("latency:")), Is.EqualTo((JsonValueKind.Null, false)), "--latency none");
        foreach (var (k, t) in Safetensors.LoadStateDict(Path.Combine(run, "best.safetensors")))
            if (t.is_floating_point()) Assert.That(t.isfinite().all().item<bool>(), k);
        var pr = Cli.Run(work, "predict", "--checkpoint", run, Directory.GetFiles(Path.Combine(data, "val", "circle"))[0], "--json");
        Assert.That(pr.ExitCode, Is.Zero, pr.Err);
        Assert.That(pr.Out, Does.Not.Contain("NaN"));
    }

    [Test]
    public void Width_sweep_writes_one_run_folder_per_width()
    {
        string sweep = Path.Combine(work, "sweep");
        var args = Recipe(sweep, 1).ToList();
        args[args.IndexOf("0.35") ] = "1,0.5";
        var r = Cli.Run(work, [.. args, "--latency", "int8"]);
        Assert.That(r.ExitCode, Is.Zero, r.Err);
        foreach (var w in new[] { "notebook-w1-s0", "notebook-w0.5-s0" })
        {
            Assert.That(File.Exists(Path.Combine(sweep, w, "confusion.png")), w);
            // --latency int8: the float32 and the int8 model's latency, each with its engine and machine.
            var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(sweep, w, "summary.json"))).RootElement;
            foreach (var (key, engine) in new[] { ("latency", "onnxruntime-cpu-fp32"), ("int8_latency", "onnxruntime-cpu-int8-s7") })
            {
                var l = summary.GetProperty(key);
                Assert.That((l.GetProperty("engine").GetString(), l.GetProperty("median_ms").GetDouble() > 0, l.GetProperty("threads").GetInt32() > 0),
                    Is.EqualTo((engine, true, true)), $"{w} {key}");
            }
        }
        Assert.That(r.Out, Does.Contain("(onnxruntime-cpu-int8-s7, calibrated on 80 val images;"));
        Assert.That(File.Exists(Path.Combine(sweep, "curves.png")) && File.Exists(Path.Combine(sweep, "report.md")), "the sweep's comparison");

        // plot on two runs made by the Train program: every figure and report.md.
        var plot = Cli.Run(work, "plot", Path.Combine(sweep, "notebook-w1-s0"), Path.Combine(sweep, "notebook-w0.5-s0"), "--out", Path.Combine(work, "cmp"));
        Assert.That(plot.ExitCode, Is.Zero, plot.Err);
        Assert.That(Directory.GetFiles(Path.Combine(work, "cmp")).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "curves.png", "accuracy_vs_cost.png", "lr.png", "report.md" }));
        Assert.That(File.ReadAllText(Path.Combine(work, "cmp", "report.md")), Does.Contain("| CPU latency | int8 latency |"));
        var notRun = Cli.Run(work, "plot", Data);
        Assert.That((notRun.ExitCode, notRun.Err.Trim()), Is.EqualTo((1, $"error: {Data} is not a run folder (no history.csv)")));
    }

    public static IEnumerable<TestCaseData> BadInput()
    {
        yield return new TestCaseData(new[] { "--bogus" }, 2, "bogus").SetName("Unknown_option_is_usage_error");
        yield return new TestCaseData(new[] { "--width", "0" }, 2, "--width").SetName("Width_zero_is_usage_error");
        yield return new TestCaseData(new[] { "--width", "-1,0.5" }, 2, "--width").SetName("Negative_width_is_usage_error");
        yield return new TestCaseData(new[] { "--batch-size", "0" }, 2, "--batch-size").SetName("Batch_size_zero_is_usage_error");
        yield return new TestCaseData(new[] { "--dataset", "folder", "--data", "/nonexistent/x" }, 1, "does not exist").SetName("Missing_data_folder");
        yield return new TestCaseData(new[] { "evaluate", "--checkpoint", "/nonexistent/run" }, 1, "does not exist").SetName("Missing_checkpoint");
        yield return new TestCaseData(new[] { "--device", "cuda", "--dataset", "folder", "--data", "." }, 1, "CUDA").SetName("Cuda_without_cuda");
        yield return new TestCaseData(new[] { "summary", "--arch", "resnet" }, 2, "--arch").SetName("Unknown_arch");
        yield return new TestCaseData(new[] { "bench", "epoch", "--epochs", "0" }, 2, "--epochs").SetName("Bench_epoch_without_epochs");
        yield return new TestCaseData(new[] { "bench", "train", "--image-size", "8" }, 2, "--image-size").SetName("Bench_train_image_too_small");
        yield return new TestCaseData(new[] { "bench", "epoch", "--paths", "decoded,sideways" }, 2, "--paths: 'sideways'").SetName("Bench_epoch_unknown_path");
        yield return new TestCaseData(new[] { "--latency", "int4", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--latency").SetName("Unknown_latency");
        yield return new TestCaseData(new[] { "--augment-on", "gpu", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--augment-on").SetName("Unknown_augment_on");
        yield return new TestCaseData(new[] { "bench", "pipeline", "--images", "0" }, 2, "--images").SetName("Bench_pipeline_without_images");
        // Numbers parse one way: a comma is no thousands separator (--lr 0,001 trained at lr 1; summary --width 1,0.5 built width 10.5).
        yield return new TestCaseData(new[] { "--lr", "0,001", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--lr must be a number").SetName("Comma_in_lr_is_usage_error");
        yield return new TestCaseData(new[] { "summary", "--width", "1,0.5" }, 2, "--width must be a number").SetName("Comma_in_summary_width_is_usage_error");
        yield return new TestCaseData(new[] { "--lr", "NaN", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--lr must be a number").SetName("NaN_lr_is_usage_error");
        yield return new TestCaseData(new[] { "--dropout", "1.5", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--dropout").SetName("Dropout_out_of_range_before_any_work");
        yield return new TestCaseData(new[] { "--min-lr", "-1", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--min-lr").SetName("Negative_min_lr_before_any_work");
        yield return new TestCaseData(new[] { "--warmup-epochs", "200", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--warmup-epochs").SetName("Warmup_past_the_run_before_any_work");
        yield return new TestCaseData(new[] { "--image-size", "8", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--image-size").SetName("Image_size_too_small_before_any_work");
        yield return new TestCaseData(new[] { "--device", "gpu" }, 2, "cuda:N").SetName("Unknown_device_is_usage_error");
        yield return new TestCaseData(new[] { "--batch-size", "1", "--image-size", "32", "--dataset", "folder", "--data", "/nonexistent/x" }, 2, "--batch-size 1")
            .SetName("Batch_of_one_at_32_px_is_refused");
        yield return new TestCaseData(new[] { "evaluate" }, 2, "give one of --checkpoint RUN, --weights").SetName("Evaluate_needs_a_network");
        yield return new TestCaseData(new[] { "evaluate", "--onnx", "m.onnx" }, 2, "--onnx needs --data ROOT").SetName("Evaluate_onnx_needs_data");
        yield return new TestCaseData(new[] { "export", "--onnx", "m.onnx", "--checkpoint", "/nonexistent/run", "--int8" }, 2, "--int8 needs --calibrate DIR").SetName("Int8_needs_calibration_images");
        yield return new TestCaseData(new[] { "export", "--onnx", "m.onnx", "--checkpoint", "/nonexistent/run", "--calibrate", "." }, 2, "--calibrate is for --int8").SetName("Calibrate_without_int8");
        // Refused before the checkpoint or any calibration image is read (the checkpoint here does not exist).
        yield return new TestCaseData(new[] { "export", "--onnx", "m.onnx", "--checkpoint", "/nonexistent/run", "--int8", "--calibrate", ".", "--opset", "11" }, 2,
            "--int8 needs --opset 13 or later").SetName("Int8_needs_opset_13");
        yield return new TestCaseData(new[] { "export", "--onnx", "m.onnx", "--checkpoint", "/nonexistent/run", "--int8", "--calibrate", ".", "--keep-batchnorm" }, 2,
            "--int8 quantizes the folded graph").SetName("Int8_needs_folded_batchnorm");
        yield return new TestCaseData(new[] { "evaluate", "--weights", "imagenet1k-v1" }, 2, "--weights needs --data").SetName("Evaluate_weights_need_data");
        yield return new TestCaseData(new[] { "synth", "--out", "x", "--classes", "9" }, 2, "--classes must be 2 to").SetName("Synth_unknown_class_count");
        yield return new TestCaseData(new[] { "synth", "--out", "x", "--size", "4" }, 2, "--size").SetName("Synth_too_small");
    }

    /// <summary>A finished two-epoch run, trained once for the damaged-file cases, which each damage a copy.</summary>
    string? finishedRun;
    string FinishedRun()
    {
        if (finishedRun is not null) return finishedRun;
        string run = Path.Combine(work, "finished");
        var r = Cli.Run(work, Recipe(run, 2));
        Assert.That(r.ExitCode, Is.Zero, r.Err);
        return finishedRun = run;
    }

    static readonly string Card = """{"arch":"notebook","width":0.35,"classes":4,"class_folders":["circle","ring","square","triangle"],"class_names":["circle"],"image_size":48,"mean":[0.5,0.5,0.5],"std":[0.2,0.2,0.2],"dropout":0}""";

    /// <summary>Damaged run files, each with the command that reads it and what its one-line error must name.</summary>
    public static IEnumerable<TestCaseData> DamagedRunFiles()
    {
        TestCaseData Case(string name, string file, string? content, string command, string mention) =>
            new TestCaseData(file, content, command, mention).SetName(name);
        yield return Case("Model_card_without_fields", "model.json", "{}", "predict", "model.json: arch is missing");
        yield return Case("Model_card_with_too_few_names", "model.json", Card, "predict", "model.json: class_names has 1 entries, classes says 4");
        yield return Case("Model_card_with_a_string_width", "model.json", Card.Replace("0.35", "\"abc\""), "evaluate", "model.json is not readable at width (line 1): a value of the wrong type");
        yield return Case("Confusion_without_counts", "confusion.json", """{"labels":1}""", "plot", "confusion.json: classes and counts are both needed");
        yield return Case("History_with_a_word_for_a_number", "history.csv", "epoch,train_loss,train_accuracy\n1,abc,0.5\n", "plot", "history.csv line 2: train_loss is 'abc', not a number");
        yield return Case("Trainer_state_without_fields", "trainer_state.json", "{}", "resume", "trainer_state.json: completed_epochs is 0: no epoch was committed");
        yield return Case("Trainer_state_naming_a_file_outside", "trainer_state.json",
            """{"completed_epochs":2,"weights":"../../../etc/passwd","optimizer":"checkpoints/epoch-0002.optimizer.bin"}""", "resume", "weights is '../../../etc/passwd', outside the run folder");
        yield return Case("Optimizer_state_missing", "checkpoints/epoch-0002.optimizer.bin", null, "resume", "epoch-0002.optimizer.bin is missing: the run folder was changed by hand");
        yield return Case("Optimizer_state_garbage", "checkpoints/epoch-0002.optimizer.bin", "garbage", "resume", "epoch-0002.optimizer.bin is not a readable optimizer state");
    }

    [TestCaseSource(nameof(DamagedRunFiles))]
    public void A_damaged_run_file_is_one_line_naming_the_file_and_the_field(string file, string? content, string command, string mention)
    {
        string copy = Path.Combine(work, "damaged-" + TestContext.CurrentContext.Test.Name);
        if (Directory.Exists(copy)) Directory.Delete(copy, true);
        foreach (var f in Directory.GetFiles(FinishedRun(), "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock")))
        {
            string to = Path.Combine(copy, Path.GetRelativePath(FinishedRun(), f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        if (content is null) File.Delete(Path.Combine(copy, file));
        else File.WriteAllText(Path.Combine(copy, file), content);
        var r = command switch
        {
            "predict" => Cli.Run(work, "predict", "--checkpoint", copy, Path.Combine(Data, "val", "ring", "0000.png")),
            "evaluate" => Cli.Run(work, "evaluate", "--checkpoint", copy),
            "plot" => Cli.Run(work, "plot", copy, "--out", Path.Combine(copy, "fig")),
            _ => Cli.Run(work, [.. Recipe(copy, 2), "--resume"]),
        };
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Out + r.Err);
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1), r.Err);
        Assert.That(r.Err, Does.StartWith("error: ").And.Contain(mention));
        Assert.That(r.Err, Does.Not.Contain("   at ").And.Not.Contain("Object reference").And.Not.Contain("Index was outside"));
    }

    [Test]
    public void Exported_onnx_predicts_what_the_checkpoint_predicts()
    {
        string onnx = Path.Combine(work, "finished.onnx");
        var export = Cli.Run(work, "export", "--onnx", onnx, "--checkpoint", FinishedRun());
        Assert.That(export.ExitCode, Is.Zero, export.Err);
        string[] images = [.. Directory.GetFiles(Path.Combine(Data, "val"), "*.png", SearchOption.AllDirectories).Order().Take(6)];
        var torch = Cli.Run(work, ["predict", "--checkpoint", FinishedRun(), "--json", "--top", "4", .. images]);
        var ort = Cli.Run(work, ["predict", "--onnx", onnx, "--json", "--top", "4", .. images]);
        Assert.That((torch.ExitCode, ort.ExitCode), Is.EqualTo((0, 0)), torch.Err + ort.Err);
        static List<(string, string, float)> Top(string json) => JsonDocument.Parse(json).RootElement.EnumerateArray()
            .SelectMany(r => r.GetProperty("top").EnumerateArray().Select(t => (r.GetProperty("image").GetString()!, t.GetProperty("class").GetString()!,
                t.GetProperty("probability").GetSingle()))).ToList();
        var (a, b) = (Top(torch.Out), Top(ort.Out));
        Assert.That(b.Select(t => (t.Item1, t.Item2)), Is.EqualTo(a.Select(t => (t.Item1, t.Item2))), "the same classes in the same order");
        Assert.That(b.Zip(a).Max(p => Math.Abs(p.First.Item3 - p.Second.Item3)), Is.LessThan(1e-4));
        // The README's program: nothing but ONNX Runtime and ImageSharp, reading the preprocessing from the metadata.
        // Its build goes into the test's folder (not ~/.local/share/dotnet/runfile, 241 MB a checkout).
        var psi = new ProcessStartInfo("dotnet", ["run", Path.Combine(Setup.RepoRoot(), "tools", "onnx-classify.cs"), "--artifacts-path", Path.Combine(work, "onnx-classify-build"), "--", onnx, images[0]])
            { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = work };
        using (var p = Process.Start(psi)!)
        {
            string said = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, said);
            var lines = said.Trim().Split('\n');
            Assert.That(lines, Has.Length.EqualTo(3), said);
            Assert.That(lines.Select(l => l[..l.LastIndexOf(' ', l.Length - 3)]), Is.SubsetOf(new[] { "circle", "ring", "square", "triangle" }), said);
        }
        // Bad input: one line, exit code.
        var old = Cli.Run(work, "export", "--onnx", Path.Combine(work, "old.onnx"), "--checkpoint", FinishedRun(), "--opset", "9");
        Assert.That((old.ExitCode, old.Err.Trim()), Is.EqualTo((2, "error: --opset must be 11 to 21 (11: ReLU6 is exported as Clip with min/max inputs; 21: the newest the bundled ONNX Runtime loads), not 9")));
        Assert.That(File.Exists(Path.Combine(work, "old.onnx")), Is.False);
        var notOnnx = Cli.Run(work, "predict", "--onnx", images[0], images[0]);
        Assert.That((notOnnx.ExitCode, notOnnx.Err.Trim().Split('\n').Length), Is.EqualTo((1, 1)), notOnnx.Err);
        Assert.That(notOnnx.Err, Does.StartWith($"error: {images[0]} is not a model ONNX Runtime can load"));
        var both = Cli.Run(work, "predict", "--onnx", onnx, "--checkpoint", FinishedRun(), images[0]);
        Assert.That((both.ExitCode, both.Err.Trim()), Is.EqualTo((2, "error: give one of --checkpoint RUN, --onnx FILE and --weights imagenet1k-v1|imagenet1k-v2")));
        // torchvision's published weights placed by hand, but not the right file: refused by the hash in their name, kept aside.
        string weightsDir = Path.Combine(work, "hand-placed", "weights");
        Directory.CreateDirectory(weightsDir);
        File.WriteAllText(Path.Combine(weightsDir, "mobilenet_v2-b0353104.pth"), "not the weights");
        var wrong = Cli.Run(work, "predict", "--weights", "imagenet1k-v1", "--data", Path.Combine(work, "hand-placed"), images[0]);
        Assert.That((wrong.ExitCode, wrong.Err.Trim().Split('\n').Length), Is.EqualTo((1, 1)), wrong.Err);
        Assert.That(wrong.Err, Does.Contain("checksum mismatch").And.Contain("expected b0353104...").And.Contain("renamed to"));
    }

    [Test]
    public void Fine_tuning_a_trained_run_on_other_data_replaces_the_head_and_resumes_across_the_phases()
    {
        string other = Path.Combine(work, "other-shapes");
        if (!Directory.Exists(other)) Synthetic.ShapesFolder(other, classes: 3, trainPerClass: 30, valPerClass: 10, size: 48, seed: 5);
        string[] Tune(string outDir) => ["--dataset", "folder", "--data", other, "--image-size", "48", "--epochs", "4", "--batch-size", "16",
            "--width", "0.35", "--arch", "notebook", "--lr", "3e-3", "--workers", "2", "--out", outDir,
            "--weights", Path.Combine(FinishedRun(), "best.safetensors"), "--unfreeze-epoch", "2", "--unfreeze-from", "12"];
        string straight = Path.Combine(work, "tuned"), killed = Path.Combine(work, "tuned-killed");
        var full = Cli.Run(work, Tune(straight));
        Assert.That(full.ExitCode, Is.Zero, full.Err);
        Assert.That(full.Out, Does.Contain("has 4 classes, this network 3: the classifier is new"));
        Assert.That(full.Out, Does.Contain($"preprocessing of {Path.Combine(FinishedRun(), "best.safetensors")}: mean and std from"));
        Assert.That(full.Out, Does.Contain("fine-tuning: features frozen for epochs 1-2"));
        var lr = HistoryRow.ReadCsv(Path.Combine(straight, "history.csv")).Select(r => r.Lr).ToList();
        Assert.That(lr[2], Is.EqualTo(3e-4).Within(1e-12), "phase 2 starts at lr / 10");

        using (var p = Process.Start(Cli.Throttled(150, work, [.. Tune(killed)]))!)
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null && !line.StartsWith("Epoch 3/4:")) { }
            Assert.That(line, Is.Not.Null, "the run reached epoch 3, the first of phase 2");
            Thread.Sleep(400);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.That(HistoryRow.ReadCsv(Path.Combine(killed, "history.csv")).Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2 }));
        // After phase 1 (the killed run's last commit) every features tensor is the source's, bit for bit; after
        // phase 2 the blocks from 12 on have trained (their BatchNorm statistics frozen) and the ones before have not.
        var source = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(FinishedRun(), "best.safetensors"));
        var phase1 = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(killed, "last.safetensors"));
        var phase2 = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(straight, "last.safetensors"));
        static bool Same(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) => a.equal(b).all().item<bool>();
        foreach (var k in source.Keys.Where(k => k.StartsWith("features.")))
        {
            Assert.That(Same(phase1[k], source[k]), $"after phase 1: {k}");
            bool trains = int.Parse(k.Split('.')[1]) >= 12 && !k.Contains("running_") && !k.EndsWith("num_batches_tracked");
            Assert.That(Same(phase2[k], source[k]), Is.EqualTo(!trains), $"after phase 2: {k}");
        }
        var resumed = Cli.Run(work, [.. Tune(killed), "--resume"]);
        Assert.That(resumed.ExitCode, Is.Zero, resumed.Err);
        static string[] WithoutSeconds(string path) => File.ReadAllLines(path).Select(l => l[..l.LastIndexOf(',')]).ToArray();
        Assert.That(WithoutSeconds(Path.Combine(killed, "history.csv")), Is.EqualTo(WithoutSeconds(Path.Combine(straight, "history.csv"))));
    }

    [Test]
    public void Synth_never_overwrites_a_dataset()
    {
        var before = Directory.GetFiles(Data, "*", SearchOption.AllDirectories).Order().ToDictionary(f => f, f => File.GetLastWriteTimeUtc(f));
        var r = Cli.Run(work, "synth", "--out", Data, "--classes", "2", "--train", "1", "--val", "1");
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((1, $"error: {Data} already exists and is not empty; synth does not overwrite a dataset (remove it or choose another --out)")));
        Assert.That(Directory.GetFiles(Data, "*", SearchOption.AllDirectories).Order().ToDictionary(f => f, f => File.GetLastWriteTimeUtc(f)), Is.EqualTo(before));
        Assert.That(Directory.GetFileSystemEntries(work).Where(e => e.EndsWith(".tmp")), Is.Empty);
        // An empty folder is fine (a user's mkdir first).
        string empty = Path.Combine(work, "empty-synth");
        Directory.CreateDirectory(empty);
        var ok = Cli.Run(work, "synth", "--out", empty, "--classes", "2", "--train", "1", "--val", "1", "--size", "16");
        Assert.That(ok.ExitCode, Is.Zero, ok.Err);
        Assert.That(Directory.GetFiles(empty, "*.png", SearchOption.AllDirectories), Has.Length.EqualTo(4));
    }

    [TestCaseSource(nameof(BadInput))]
    public void Bad_input_is_one_clear_line_and_an_exit_code(string[] args, int code, string mention)
    {
        var r = Cli.Run(work, args);
        Assert.That(r.ExitCode, Is.EqualTo(code), r.Out + r.Err);
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1), r.Err);
        Assert.That(r.Err, Does.StartWith("error: ").And.Contain(mention));
        Assert.That(r.Err, Does.Not.Contain("   at "));
    }

    [Test]
    public void Unreadable_checkpoint_and_non_image_are_clear_errors_and_shape_mismatch_names_the_tensor()
    {
        string run = Path.Combine(work, "bad-ckpt");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "model.json"), JsonSerializer.Serialize(new ModelCard(Preset.Paper, 0.5, 4, ["a", "b", "c", "d"],
            ["a", "b", "c", "d"], 48, [0.5f, 0.5f, 0.5f], [0.2f, 0.2f, 0.2f], 0), Files.Json));
        File.WriteAllText(Path.Combine(run, "best.safetensors"), "not a checkpoint");
        var r = Cli.Run(work, "predict", "--checkpoint", run, Path.Combine(Data, "val", "ring", "0000.png"));
        Assert.That((r.ExitCode, r.Err.Trim().Split('\n').Length), Is.EqualTo((1, 1)), r.Err);
        Assert.That(r.Err, Does.Contain("not a readable safetensors"));

        // A real checkpoint of another width: the first differing tensor is named.
        var net = Keras.MobileNet.Model.Factories.MobileNetV2(Architecture.MobileNetV2Spec.Build(Architecture.Preset.Paper, 1.0, 4));
        Checkpoints.Save(net, Path.Combine(run, "best.safetensors"));
        r = Cli.Run(work, "predict", "--checkpoint", run, Path.Combine(Data, "val", "ring", "0000.png"));
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("tensor 'features.0.0.weight' has shape [32, 3, 3, 3], the network needs [16, 3, 3, 3]"));

        Checkpoints.Save(Keras.MobileNet.Model.Factories.MobileNetV2(Architecture.MobileNetV2Spec.Build(Architecture.Preset.Paper, 0.5, 4)),
            Path.Combine(run, "best.safetensors"));
        string text = Path.Combine(work, "notes.txt");
        File.WriteAllText(text, "hello");
        r = Cli.Run(work, "predict", "--checkpoint", run, text);
        Assert.That((r.ExitCode, r.Err.Trim().Split('\n').Length), Is.EqualTo((1, 1)), r.Err);
        Assert.That(r.Err, Does.Contain("not a readable image"));
    }
}
