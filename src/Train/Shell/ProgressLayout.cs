using System.Globalization;

using Keras.MobileNet.Training;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

/// <summary>What the live bar shows for the current epoch.</summary>
public sealed record BarState(int Epoch, int Epochs, int Batch, int Batches, double Loss, double Accuracy, double ImagesPerSecond, TimeSpan? Eta);

/// <summary>
/// The text of the progress display, laid out for a terminal's width. Pure: state and width in, text out. Nothing is
/// cut: columns are dropped whole, least important first, and epoch results wrap at field boundaries.
/// </summary>
public static class ProgressLayout
{
    const int MinBar = 10, MaxBar = 30;
    const string Sep = " - ";

    static string F4(double v) => double.IsFinite(v) ? v.ToString("F4", CultureInfo.InvariantCulture) : "-";

    /// <summary>
    /// One line of at most <paramref name="width"/> - 1 characters (the last column of a terminal wraps):
    /// "Epoch 3/10 [=====>    ] 12/148 loss 0.7543 acc 0.8250 ETA 0:42 123 img/s". Dropped first: img/s, acc, ETA,
    /// loss, then the bar. The epoch and the batch count always stay.
    /// </summary>
    public static string Bar(BarState s, int width)
    {
        int room = Math.Max(1, width - 1);
        string head = $"Epoch {s.Epoch}/{s.Epochs}", count = $"{s.Batch}/{s.Batches}";
        // Display order, each with its drop rank (higher goes first).
        var optional = new List<(string Text, int Drop)>();
        if (double.IsFinite(s.Loss)) optional.Add(($"loss {F4(s.Loss)}", 1));
        if (double.IsFinite(s.Accuracy)) optional.Add(($"acc {F4(s.Accuracy)}", 3));
        if (s.Eta is TimeSpan eta) optional.Add(($"ETA {Estimate.Duration(eta)}", 2));
        if (double.IsFinite(s.ImagesPerSecond) && s.ImagesPerSecond > 0)
            optional.Add(($"{s.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture)} img/s", 4));
        while (true)
        {
            int fixedLen = head.Length + 1 + count.Length + optional.Sum(o => o.Text.Length + 1);
            int bar = Math.Min(MaxBar, room - fixedLen - 1);
            if (bar >= MinBar)
                return string.Join(' ', new[] { head, BarGlyphs(s.Batch, s.Batches, bar), count }.Concat(optional.Select(o => o.Text)));
            if (optional.Count == 0) break;
            optional.RemoveAt(optional.IndexOf(optional.MaxBy(o => o.Drop)));
        }
        string plain = $"{head} {count}";
        return plain.Length <= room ? plain : $"{s.Epoch}/{s.Epochs} {count}";
    }

    static string BarGlyphs(int done, int total, int width)
    {
        int inner = width - 2;
        int filled = total <= 0 ? 0 : (int)Math.Round((double)inner * Math.Clamp(done, 0, total) / total);
        return "[" + new string('=', filled) + (filled < inner ? ">" + new string('.', inner - filled - 1) : "") + "]";
    }

    /// <summary>The val top-k key Fit logged (val_top5 unless the model was compiled with another k).</summary>
    static string TopKey(Logs l) => l.Values.Keys.FirstOrDefault(k => k.StartsWith("val_top", StringComparison.Ordinal)) ?? "val_top5";

    /// <summary>The fields of a finished epoch, Keras' order and names.</summary>
    public static IReadOnlyList<string> EpochFields(int epoch, int epochs, Logs l)
    {
        string Val(string key) => l.Get(key) is double v ? F4(v) : "-";
        var ips = l.Get("images_per_second") ?? double.NaN;
        return
        [
            $"Epoch {epoch + 1}/{epochs}",
            (l.Get("seconds") ?? 0).ToString("F1", CultureInfo.InvariantCulture) + "s",
            (double.IsFinite(ips) ? ips.ToString("F0", CultureInfo.InvariantCulture) : "-") + " img/s",
            $"loss {Val("loss")}", $"accuracy {Val("accuracy")}", $"val_loss {Val("val_loss")}",
            $"val_accuracy {Val("val_accuracy")}", $"{TopKey(l)} {Val(TopKey(l))}",
            "lr " + (l.Get("lr") ?? double.NaN).ToString("0.####e+0", CultureInfo.InvariantCulture),
        ];
    }

    /// <summary>
    /// Fields joined with " - " into lines of at most <paramref name="width"/> - 1 characters; a line that continues
    /// the record starts with two spaces. A field longer than the room stands alone on its line (wrapped by the
    /// terminal, never cut).
    /// </summary>
    public static IReadOnlyList<string> Wrap(IReadOnlyList<string> fields, int width)
    {
        int room = Math.Max(1, width - 1);
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        foreach (var f in fields)
        {
            if (line.Length == 0) line.Append(lines.Count == 0 ? f : "  " + f);
            else if (line.Length + Sep.Length + f.Length <= room) line.Append(Sep).Append(f);
            else
            {
                lines.Add(line.ToString());
                line.Clear().Append("  ").Append(f);
            }
        }
        if (line.Length > 0) lines.Add(line.ToString());
        return lines;
    }
}
