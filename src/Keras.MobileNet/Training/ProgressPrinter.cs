using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Keras.MobileNet.Training;

/// <summary>
/// Progress in the console. On a terminal: a live per-batch bar (loss, accuracy, images/s, ETA) redrawn a few times
/// a second; redirected: one line when an epoch starts and one summary line when it ends.
/// </summary>
public sealed class ProgressPrinter(IAnsiConsole console, int epochs, int batchesPerEpoch) : Callback
{
    readonly bool live = console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi && !Console.IsOutputRedirected;
    readonly Stopwatch clock = new();
    TimeSpan lastDraw;
    int epoch, images;

    public override void OnEpochBegin(int epoch, Logs logs)
    {
        this.epoch = epoch;
        images = 0;
        clock.Restart();
        lastDraw = TimeSpan.Zero;
        if (!live) console.WriteLine($"Epoch {epoch + 1}/{epochs}: {batchesPerEpoch} batches, lr {logs.Get("lr") ?? Model.LearningRate:0.####e+0}");
    }

    public override void OnBatchEnd(int batch, Logs logs)
    {
        images += (int)(logs.Get("size") ?? 0);
        if (!live || clock.Elapsed - lastDraw < TimeSpan.FromMilliseconds(250) && batch + 1 < batchesPerEpoch) return;
        lastDraw = clock.Elapsed;
        var (loss, acc, _) = Model.RunningState?.Invoke() ?? (double.NaN, double.NaN, -1);
        double rate = images / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        double eta = (batchesPerEpoch - batch - 1) * clock.Elapsed.TotalSeconds / (batch + 1);
        int width = 30, filled = (int)Math.Round(width * (batch + 1.0) / batchesPerEpoch);
        Console.Write($"\r{epoch + 1}/{epochs} [{new string('=', filled)}{new string(' ', width - filled)}] {batch + 1}/{batchesPerEpoch} " +
                      $"loss {loss:F4} acc {acc:F4} {rate:F0} img/s ETA {eta:F0}s   ");
    }

    public override void OnEpochEnd(int epoch, Logs l)
    {
        if (live) Console.Write("\r" + new string(' ', Math.Max(0, Console.WindowWidth - 1)) + "\r");
        string Val(string key) => l.Get(key) is double v ? v.ToString("F4", CultureInfo.InvariantCulture) : "-";
        console.WriteLine($"Epoch {epoch + 1}/{epochs} - {l["seconds"]:F1}s - {l.Get("images_per_second"):F0} img/s - loss {Val("loss")} - " +
                          $"accuracy {Val("accuracy")} - val_loss {Val("val_loss")} - val_accuracy {Val("val_accuracy")} - " +
                          $"val_top5 {Val("val_top5")} - lr {l["lr"]:0.####e+0}");
    }
}
