using Keras.MobileNet.Cli;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Keras.MobileNet.Tests;

public class ProgressLayoutTests
{
    static readonly BarState Mid = new(3, 100, 57, 148, 0.75432, 0.825, 123.4, TimeSpan.FromSeconds(4321));

    [Test]
    public void The_epoch_line_names_the_top_k_that_fit_logged_and_history_keeps_only_top_5()
    {
        var logs = Logs.Empty.With("loss", 1).With("accuracy", 0.5).With("val_loss", 1.2).With("val_accuracy", 0.4).With("val_top3", 0.75)
            .With("lr", 1e-3).With("seconds", 2);
        Assert.That(ProgressLayout.EpochFields(0, 3, logs), Does.Contain("val_top3 0.7500"));
        Assert.That(Rows.From(0, logs).ValTop5, Is.Null, "a top-3 value is not written as top-5");
        var five = new Logs(logs.Values.Remove("val_top3").Add("val_top5", 0.9));
        Assert.That(ProgressLayout.EpochFields(0, 3, five), Does.Contain("val_top5 0.9000"));
        Assert.That(Rows.From(0, five).ValTop5, Is.EqualTo(0.9));
    }

    [Test]
    public void Bar_fits_every_width_and_always_names_epoch_and_batch()
    {
        for (int width = 13; width <= 250; width++) // "3/100 57/148" needs 12 + the last column
        {
            string bar = ProgressLayout.Bar(Mid, width);
            Assert.That(bar.Length, Is.LessThanOrEqualTo(width - 1), $"width {width}: '{bar}'");
            Assert.That(bar, Does.Contain("3/100").And.Contain("57/148"), $"width {width}");
        }
    }

    [Test]
    public void Bar_drops_whole_columns_least_important_first()
    {
        string wide = ProgressLayout.Bar(Mid, 200);
        Assert.That(wide, Is.EqualTo("Epoch 3/100 [===========>................] 57/148 loss 0.7543 acc 0.8250 ETA 1:12:01 123 img/s"));
        string at60 = ProgressLayout.Bar(Mid, 60);
        Assert.That(at60, Does.Contain("loss 0.7543").And.Contain("ETA 1:12:01").And.Not.Contain("img/s"), at60);
        Assert.That(at60, Does.Match(@"\[=+>\.+\]"), "the bar survives at 60 columns");
        string at50 = ProgressLayout.Bar(Mid, 50);
        Assert.That(at50, Does.Contain("loss 0.7543").And.Not.Contain("acc").And.Not.Contain("ETA"), at50);
        Assert.That(ProgressLayout.Bar(Mid, 40), Is.EqualTo("Epoch 3/100 [=======>..........] 57/148"), "the bar outlives the loss");
        Assert.That(ProgressLayout.Bar(Mid, 29), Is.EqualTo("Epoch 3/100 57/148"), "no room for a bar: the counts alone");
        Assert.That(ProgressLayout.Bar(Mid, 15), Is.EqualTo("3/100 57/148"));
        Assert.That(ProgressLayout.Bar(Mid with { Loss = double.NaN, Accuracy = double.NaN, Eta = null, ImagesPerSecond = double.NaN }, 80),
            Does.Not.Contain("loss").And.Not.Contain("ETA"), "nothing measured yet, nothing shown");
    }

    static Logs Epoch() => Logs.Empty.With("loss", 0.75432).With("accuracy", 0.825).With("val_loss", 0.7238).With("val_accuracy", 0.875)
        .With("val_top5", 1).With("lr", 2.0833e-3).With("seconds", 2.2).With("images_per_second", 108);

    [Test]
    public void Epoch_record_wraps_at_field_boundaries_and_loses_nothing()
    {
        var fields = ProgressLayout.EpochFields(3, 8, Epoch());
        string oneLine = "Epoch 4/8 - 2.2s - 108 img/s - loss 0.7543 - accuracy 0.8250 - val_loss 0.7238 - val_accuracy 0.8750 - val_top5 1.0000 - lr 2.0833e-3";
        Assert.That(string.Join(" - ", fields), Is.EqualTo(oneLine));
        Assert.That(ProgressLayout.Wrap(fields, 200), Is.EqualTo(new[] { oneLine }));
        foreach (int width in new[] { 40, 60, 80, 100, 120 })
        {
            var lines = ProgressLayout.Wrap(fields, width);
            Assert.That(lines.All(l => l.Length <= width - 1), $"width {width}: {string.Join(" | ", lines)}");
            Assert.That(lines.Skip(1).All(l => l.StartsWith("  ")), "continuation lines are indented");
            Assert.That(string.Join(" - ", lines.Select(l => l.Trim())), Is.EqualTo(oneLine), $"width {width}");
        }
        Assert.That(ProgressLayout.Wrap(fields, 80), Has.Count.EqualTo(2));
    }
}

/// <summary>A short training in a real terminal (tmux), read back from the screen as a user would see it.</summary>
[NonParallelizable]
[Category("Slow")] // starts the Train program, a terminal or a server
public class TerminalTests
{
    string work = "";

    [OneTimeSetUp]
    public void Make()
    {
        work = Directory.CreateTempSubdirectory("km-tmux").FullName;
        Synthetic.ShapesFolder(Path.Combine(work, "shapes"), classes: 3, trainPerClass: 24, valPerClass: 6, size: 40);
    }

    [OneTimeTearDown] public void Remove() => Directory.Delete(work, true);

    static string? Tmux() => new[] { "/usr/bin/tmux", "/usr/local/bin/tmux" }.FirstOrDefault(File.Exists);

    static string Run(string tmux, params string[] args)
    {
        var psi = new ProcessStartInfo(tmux) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string o = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return o;
    }

    [TestCase(80)]
    [TestCase(120)]
    [TestCase(200)]
    public void Every_epoch_line_and_the_summary_are_on_screen_and_nothing_is_cut(int columns)
    {
        string? tmux = Tmux();
        if (tmux is null)
        {
            if (Environment.GetEnvironmentVariable("CI") is not null) Assert.Fail("tmux is missing (.ci/run installs it)");
            Assert.Ignore("tmux is not installed (apt-get install tmux)");
        }
        string session = $"km{columns}-{Environment.ProcessId}";
        string run = Path.Combine(work, $"run{columns}");
        string command = $"cd '{work}' && TERM=xterm-256color KM_THROTTLE_MS=40 dotnet '{Cli.TrainDll}' --dataset folder --data shapes --image-size 40 --epochs 3 " +
                         $"--batch-size 6 --width 0.35 --arch notebook --workers 2 --out '{run}'; echo __EXIT_$?__; sleep 600";
        Run(tmux, "new-session", "-d", "-s", session, "-x", $"{columns}", "-y", "40", command);
        try
        {
            string screen = "";
            var clock = Stopwatch.StartNew();
            bool barSeen = false;
            while (clock.Elapsed < TimeSpan.FromMinutes(2) && !screen.Contains("__EXIT_"))
            {
                Thread.Sleep(200);
                screen = Run(tmux, "capture-pane", "-p", "-t", session, "-S", "-");
                barSeen |= Regex.IsMatch(screen, @"Epoch \d/3 \[[=>.]+\] \d+/12");
            }
            Assert.That(screen, Does.Contain("__EXIT_0__"), screen);
            var lines = screen.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToList();
            Assert.That(lines.All(l => l.Length <= columns), "tmux shows at most the pane's width");
            Assert.That(screen, Does.Not.Contain("…"), "no ellipsis: nothing was cut");
            Assert.That(barSeen, "the live bar was drawn while an epoch ran");
            for (int e = 1; e <= 3; e++)
            {
                int at = lines.FindIndex(l => l.StartsWith($"Epoch {e}/3 - "));
                Assert.That(at, Is.GreaterThanOrEqualTo(0), $"epoch {e} has its permanent line:\n{screen}");
                // The record is that line and its indented continuations.
                string record = string.Join(" - ", lines.Skip(at).Take(1).Concat(lines.Skip(at + 1).TakeWhile(l => l.StartsWith("  "))).Select(l => l.Trim()));
                Assert.That(record, Does.Match(@"^Epoch \d/3 - [\d.]+s - \d+ img/s - loss [\d.]+ - accuracy [\d.]+ - val_loss [\d.]+ - " +
                                              @"val_accuracy [\d.]+ - val_top5 [\d.]+ - lr [\d.e+-]+$"), record);
            }
            Assert.That(lines.Any(l => l.Contains("best val_accuracy") && l.Contains("3 epochs")), "the final summary is on screen");
            Assert.That(lines.Where(l => Regex.IsMatch(l, @"\[[=>.]+\]")), Is.Empty, "no leftover bar once the run is over");
        }
        finally { Run(tmux, "kill-session", "-t", session); }
    }
}

public class EstimateTests
{
    [Test]
    public void Whole_run_adds_every_width_epoch_batch_and_checkpoint()
    {
        var shape = new RunShape(TrainImages: 130, ValImages: 70, BatchSize: 64, Epochs: 10, ImageSize: 224);
        Assert.That((shape.TrainBatches, shape.ValBatches), Is.EqualTo((3, 2)), "partial batches count");
        var costs = new[] { new StepCost(1.0, 2.0, 0.5, 0.25), new StepCost(0.5, 1.0, 0.25, 0.25) };
        Assert.That(Estimate.WholeSeconds(shape, costs), Is.EqualTo(10 * (3 * 2.0 + 2 * 0.5 + 0.25) + 10 * (3 * 1.0 + 2 * 0.25 + 0.25)));
    }

    [Test]
    public void Shorter_recipe_keeps_the_largest_image_size_that_fits_ten_epochs()
    {
        Assert.That(Estimate.Shorter(3000, 3600, 224, 100), Is.Null, "fits already");
        // 100 epochs in 10 hours: 10 epochs at 224 fit in one hour.
        Assert.That(Estimate.Shorter(36000, 3600, 224, 100), Is.EqualTo((224, 10)));
        // 100 hours: at 224 one epoch an hour; at 128, (128/224)^2 = 0.327 of the cost: 3 epochs; at 96: 5.4 -> nothing fits 10.
        Assert.That(Estimate.Shorter(360000, 3600, 224, 100), Is.EqualTo((96, 5)));
        // 25 hours: 4 epochs at 224, 12 at 128 (12.2), and 160 gives 7.8: 128 is the largest with ten.
        Assert.That(Estimate.Shorter(90000, 3600, 224, 100), Is.EqualTo((128, 12)));
        Assert.That(Estimate.Shorter(7200, 3600, 224, 6), Is.EqualTo((128, 6)), "fewer than ten epochs: all of them are kept, at 128 px (9.2 would fit)");
    }

    [Test]
    public void Suggested_command_is_the_users_with_the_new_values()
    {
        string[] args = ["--width", "0.75", "--data", "my data", "--epochs", "100", "--estimate-only"];
        var set = new Dictionary<string, string> { ["--epochs"] = "12", ["--image-size"] = "128" };
        Assert.That(Keras.MobileNet.Cli.Words.CommandWith(args, set),
            Is.EqualTo("dotnet run --project src/Train -- --width 0.75 --data 'my data' --epochs 12 --image-size 128"));
    }
}
