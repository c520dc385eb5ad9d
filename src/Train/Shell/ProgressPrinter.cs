using System.Diagnostics;

using Keras.MobileNet.Engine;

namespace Keras.MobileNet.Cli;

/// <summary>Where progress goes: a terminal (with its current width) or a redirected stream (plain lines).</summary>
public sealed record ProgressOutput(TextWriter Writer, Func<int>? TerminalWidth)
{
    public bool Live => TerminalWidth is not null;

    /// <summary>The process's stdout: live when it is a terminal that understands ANSI, plain lines otherwise.</summary>
    public static ProgressOutput Console()
    {
        bool terminal = !System.Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is { } term && term != "dumb"
                        && SafeWidth() > 0;
        return new ProgressOutput(System.Console.Out, terminal ? SafeWidth : null);
    }

    static int SafeWidth()
    {
        try { return System.Console.WindowWidth; } catch (IOException) { return 0; }
    }
}

/// <summary>
/// Keras-style progress. On a terminal: a live bar for the current epoch only (batch k/N, running loss and accuracy,
/// ETA, images/s), laid out for the terminal's width as it is now, then each finished epoch as permanent lines in the
/// scrollback. Redirected: one line when an epoch starts and one when it ends. The running loss and accuracy cost a
/// host sync, so they are read at most four times a second.
/// </summary>
public sealed class ProgressPrinter(ProgressOutput output, int epochs, int batchesPerEpoch) : Callback
{
    const string ClearLine = "\r\u001b[K";
    readonly Stopwatch clock = new();
    TimeSpan lastDraw;
    int epoch, images;
    bool barShown;

    public override void OnEpochBegin(int epoch, Logs logs)
    {
        this.epoch = epoch;
        images = 0;
        clock.Restart();
        lastDraw = TimeSpan.Zero;
        if (output.Live) Draw(0, double.NaN, double.NaN);
        else output.Writer.WriteLine($"Epoch {epoch + 1}/{epochs}: {batchesPerEpoch} batches, lr {logs.Get("lr") ?? Model.LearningRate:0.####e+0}");
    }

    public override void OnBatchEnd(int batch, Logs logs)
    {
        images += (int)(logs.Get("size") ?? 0);
        if (!output.Live || clock.Elapsed - lastDraw < TimeSpan.FromMilliseconds(250)) return;
        lastDraw = clock.Elapsed;
        var (loss, acc, _) = Model.RunningState?.Invoke() ?? (double.NaN, double.NaN, -1);
        Draw(batch + 1, loss, acc);
    }

    void Draw(int done, double loss, double acc)
    {
        double seconds = clock.Elapsed.TotalSeconds;
        TimeSpan? eta = done > 0 ? TimeSpan.FromSeconds(seconds / done * (batchesPerEpoch - done)) : null;
        var state = new BarState(epoch + 1, epochs, done, batchesPerEpoch, loss, acc, done > 0 ? images / Math.Max(seconds, 1e-9) : double.NaN, eta);
        output.Writer.Write(ClearLine + ProgressLayout.Bar(state, output.TerminalWidth!()));
        output.Writer.Flush();
        barShown = true;
    }

    public override void OnEpochEnd(int epoch, Logs l)
    {
        var fields = ProgressLayout.EpochFields(epoch, epochs, l);
        if (!output.Live)
        {
            output.Writer.WriteLine(string.Join(" - ", fields));
            return;
        }
        output.Writer.Write(ClearLine);
        foreach (var line in ProgressLayout.Wrap(fields, output.TerminalWidth!())) output.Writer.WriteLine(line);
        output.Writer.Flush();
        barShown = false;
    }

    public override void OnTrainEnd(Logs logs)
    {
        if (barShown) output.Writer.Write(ClearLine); // a run stopped mid-epoch leaves no half bar
        barShown = false;
        output.Writer.Flush();
    }
}
