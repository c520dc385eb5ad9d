using System.Text.Json;
using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Engine;

/// <summary>
/// Writes TensorBoard event files: every numeric epoch log as a scalar, one whole file per epoch (<see cref="EventFile"/>),
/// so an epoch trained again replaces its file instead of appearing twice.
/// </summary>
public sealed class TensorBoard(string logDir) : Callback
{
    public override void OnEpochEnd(int epoch, Logs logs) => EventFile.Write(logDir, epoch + 1,
        logs.Values.Where(kv => kv.Key != "first_nonfinite_batch").Select(kv => (EventFile.Tag(kv.Key), kv.Value)));
}

/// <summary>The epoch table written as history.csv (and .json) after every epoch; rows of earlier runs are kept on resume.</summary>
public sealed class CsvLogger(string path, IReadOnlyList<HistoryRow>? earlier = null) : Callback
{
    readonly List<HistoryRow> rows = [.. earlier ?? []];
    public IReadOnlyList<HistoryRow> Rows => rows;

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        rows.RemoveAll(r => r.Epoch >= epoch + 1);
        rows.Add(Engine.Rows.From(epoch, logs));
        Files.WriteAtomic(path, HistoryRow.ToCsv(rows));
        Files.WriteAtomic(Path.ChangeExtension(path, ".json"), JsonSerializer.Serialize(rows, Files.Json));
    }
}
