using System.Globalization;
using System.Text;

namespace Keras.MobileNet.Runs;

/// <summary>One row of history.csv. Epochs count from 1 in files, as people read them.</summary>
public sealed record HistoryRow(int Epoch, double TrainLoss, double TrainAccuracy, double? ValLoss, double? ValAccuracy, double? ValTop5,
    double Lr, double Seconds)
{
    public static readonly string Header = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_top5,lr,seconds";

    static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    public static string ToCsv(IEnumerable<HistoryRow> rows)
    {
        var sb = new StringBuilder(Header).Append('\n');
        foreach (var r in rows)
            sb.Append(r.Epoch).Append(',').Append(F(r.TrainLoss)).Append(',').Append(F(r.TrainAccuracy)).Append(',')
              .Append(F(r.ValLoss)).Append(',').Append(F(r.ValAccuracy)).Append(',').Append(F(r.ValTop5)).Append(',')
              .Append(F(r.Lr)).Append(',').Append(F(Math.Round(r.Seconds, 3))).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// Reads history.csv; missing val columns are allowed (empty cells or absent columns). A cell that is not a number
    /// is an <see cref="InvalidDataException"/> naming the file, the line and the column.
    /// </summary>
    public static List<HistoryRow> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.All(l => l.Length == 0)) throw new InvalidDataException($"{path} is empty");
        var cols = lines[0].Split(',');
        int Col(string n) => Array.IndexOf(cols, n);
        if (Col("epoch") < 0 || Col("train_loss") < 0) throw new InvalidDataException($"{path} is not a history.csv (no epoch/train_loss columns)");
        var rows = new List<HistoryRow>();
        for (int n = 1; n < lines.Length; n++)
        {
            if (lines[n].Length == 0) continue;
            var f = lines[n].Split(',');
            double? Get(string name)
            {
                int i = Col(name);
                if (i < 0 || i >= f.Length || f[i].Length == 0) return null;
                return double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                    : throw new InvalidDataException($"{path} line {n + 1}: {name} is '{f[i]}', not a number");
            }
            double epoch = Get("epoch") ?? throw new InvalidDataException($"{path} line {n + 1}: the epoch is missing");
            if (epoch != Math.Floor(epoch) || epoch < 1) throw new InvalidDataException($"{path} line {n + 1}: epoch is {epoch}, not 1, 2, ...");
            rows.Add(new HistoryRow((int)epoch, Get("train_loss") ?? double.NaN, Get("train_accuracy") ?? double.NaN, Get("val_loss"),
                Get("val_accuracy"), Get("val_top5"), Get("lr") ?? double.NaN, Get("seconds") ?? 0));
        }
        return rows;
    }
}
