using Keras.MobileNet.Cli;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Keras.MobileNet.Tests;

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
