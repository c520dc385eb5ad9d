using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Keras.MobileNet.Training;

/// <summary>
/// Progress in the console. On a terminal: a Spectre.Console bar per epoch (loss, accuracy, images/s, ETA) redrawn a
/// few times a second, ending as the epoch's summary line; redirected: one line when an epoch starts and one when it
/// ends. The running loss and accuracy cost a host sync, so they are read at most four times a second.
/// </summary>
public sealed class ProgressPrinter(IAnsiConsole console, int epochs, int batchesPerEpoch) : Callback
{
    readonly Stopwatch clock = new();
    TimeSpan lastDraw;
    int epoch, images;
    ProgressTask? task;

    /// <summary>Set while a live Spectre progress display runs (see <see cref="RunLive"/>).</summary>
    public ProgressContext? Live { get; set; }

    public static bool Interactive(IAnsiConsole console) =>
        console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi && !Console.IsOutputRedirected;

    /// <summary>Runs <paramref name="fit"/> inside a live progress display when the console is a terminal.</summary>
    public void RunLive(Action fit)
    {
        if (!Interactive(console)) { fit(); return; }
        console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => { Live = ctx; try { fit(); } finally { Live = null; } });
    }

    public override void OnEpochBegin(int epoch, Logs logs)
    {
        this.epoch = epoch;
        images = 0;
        clock.Restart();
        lastDraw = TimeSpan.Zero;
        double lr = logs.Get("lr") ?? Model.LearningRate;
        if (Live is not null) task = Live.AddTask(Markup.Escape($"Epoch {epoch + 1}/{epochs}"), maxValue: batchesPerEpoch);
        else console.WriteLine($"Epoch {epoch + 1}/{epochs}: {batchesPerEpoch} batches, lr {lr:0.####e+0}");
    }

    public override void OnBatchEnd(int batch, Logs logs)
    {
        images += (int)(logs.Get("size") ?? 0);
        if (task is null) return;
        task.Increment(1);
        if (clock.Elapsed - lastDraw < TimeSpan.FromMilliseconds(250)) return;
        lastDraw = clock.Elapsed;
        var (loss, acc, _) = Model.RunningState?.Invoke() ?? (double.NaN, double.NaN, -1);
        double rate = images / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        task.Description = Markup.Escape($"Epoch {epoch + 1}/{epochs} loss {loss:F4} acc {acc:F4} {rate:F0} img/s");
    }

    public override void OnEpochEnd(int epoch, Logs l)
    {
        string Val(string key) => l.Get(key) is double v ? v.ToString("F4", CultureInfo.InvariantCulture) : "-";
        string line = $"Epoch {epoch + 1}/{epochs} - {l["seconds"]:F1}s - {l.Get("images_per_second"):F0} img/s - loss {Val("loss")} - " +
                      $"accuracy {Val("accuracy")} - val_loss {Val("val_loss")} - val_accuracy {Val("val_accuracy")} - " +
                      $"val_top5 {Val("val_top5")} - lr {l["lr"]:0.####e+0}";
        if (task is not null)
        {
            task.Description = Markup.Escape(line);
            task.Value = task.MaxValue;
            task.StopTask();
            task = null;
        }
        else console.WriteLine(line);
    }
}
