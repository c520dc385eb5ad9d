using System.Collections.Immutable;
using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Engine;

/// <summary>Keras' flat logs dict as an immutable value: "loss", "accuracy", "val_loss", "val_accuracy", "lr", ...</summary>
public sealed record Logs(ImmutableSortedDictionary<string, double> Values)
{
    public static readonly Logs Empty = new(ImmutableSortedDictionary<string, double>.Empty);
    public double this[string key] => Values[key];
    public double? Get(string key) => Values.TryGetValue(key, out var v) ? v : null;
    public Logs With(string key, double value) => new(Values.SetItem(key, value));
    public override string ToString() => string.Join(", ", Values.Select(kv => $"{kv.Key}={kv.Value:G6}"));
}

/// <summary>Keras' callback: every hook empty by default.</summary>
public abstract class Callback
{
    public KerasModel Model { get; internal set; } = null!;
    public virtual void OnTrainBegin(Logs logs) { }
    public virtual void OnTrainEnd(Logs logs) { }
    public virtual void OnEpochBegin(int epoch, Logs logs) { }
    /// <summary>After Fit puts the network in training mode for an epoch: where layers are frozen (inference mode).</summary>
    public virtual void OnTrainingMode(int epoch) { }
    public virtual void OnEpochEnd(int epoch, Logs logs) { }
    public virtual void OnBatchBegin(int batch, Logs logs) { }
    public virtual void OnBatchEnd(int batch, Logs logs) { }
}

/// <summary>The History callback: a fold of epoch logs.</summary>
public sealed class History : Callback
{
    public List<(int Epoch, Logs Logs)> Epochs { get; } = [];
    public override void OnEpochEnd(int epoch, Logs logs) => Epochs.Add((epoch, logs));
    public IReadOnlyList<double> Series(string key) => Epochs.Select(e => e.Logs.Get(key) ?? double.NaN).ToList();
}

/// <summary>
/// Epoch logs as history rows (epochs count from 1 in files, as people read them). The val_top5 column holds top-5
/// only: a model compiled with another k logs val_top{k}, which no column of history.csv claims to be.
/// </summary>
public static class Rows
{
    public static HistoryRow From(int epoch, Logs l) => new(epoch + 1, l["loss"], l["accuracy"], l.Get("val_loss"), l.Get("val_accuracy"),
        l.Get("val_top5"), l["lr"], l["seconds"]);
}
