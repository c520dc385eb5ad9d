using System.Globalization;
using System.Text;
using System.Text.Json;
using Keras.MobileNet.Model;
using TorchSharp;
using TorchSharp.PyBridge;

namespace Keras.MobileNet.Training;

/// <summary>Sets the learning rate at the start of each epoch from a pure schedule.</summary>
public sealed class LearningRateScheduler(Func<int, double> schedule) : Callback
{
    public override void OnEpochBegin(int epoch, Logs logs) => Model.LearningRate = schedule(epoch);
}

/// <summary>Sets the learning rate before every batch from a pure per-step schedule (warm-up + cosine).</summary>
public sealed class StepLearningRateScheduler(Func<long, double> schedule, int stepsPerEpoch) : Callback
{
    int epoch;
    public override void OnEpochBegin(int epoch, Logs logs)
    {
        this.epoch = epoch;
        Model.LearningRate = schedule((long)epoch * stepsPerEpoch);
    }
    public override void OnBatchBegin(int batch, Logs logs) => Model.LearningRate = schedule((long)epoch * stepsPerEpoch + batch);
}

/// <summary>Stops when the loss stops being finite: names the epoch and batch; checkpoints are not overwritten.</summary>
public sealed class TerminateOnNaN(int checkEveryBatches = 10) : Callback
{
    int epoch;
    public override void OnEpochBegin(int epoch, Logs logs) => this.epoch = epoch;

    public override void OnBatchEnd(int batch, Logs logs)
    {
        if ((batch + 1) % checkEveryBatches != 0 || Model.RunningState is null) return;
        int bad = Model.RunningState().FirstBadBatch;
        if (bad >= 0) Stop(bad);
    }

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        int bad = (int)(logs.Get("first_nonfinite_batch") ?? -1);
        if (bad >= 0) Stop(bad);
        else if (logs.Get("val_loss") is double v && !double.IsFinite(v)) Stop($"validation loss became NaN or infinite at epoch {epoch + 1}; stopped");
        else if (NonFinite.FirstIn(Model.Network) is string name) Stop($"{name} became NaN or infinite at epoch {epoch + 1}; stopped");
    }

    void Stop(int batch) => Stop($"loss became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}; stopped");

    void Stop(string reason)
    {
        Model.StopTraining = true;
        Model.StopReason ??= reason;
    }
}

/// <summary>Finds weights or BatchNorm statistics that are no longer finite (a finite loss does not prove they are).</summary>
public static class NonFinite
{
    /// <summary>The key of the first parameter or buffer holding NaN or infinity, or null.</summary>
    public static string? FirstIn(torch.nn.Module module)
    {
        using var _ = torch.NewDisposeScope();
        using var __ = torch.no_grad();
        foreach (var (name, t) in module.state_dict())
            if (t.is_floating_point() && !t.isfinite().all().item<bool>()) return $"'{name}'";
        return null;
    }

    /// <summary>True when an epoch's logs or the network carry a non-finite value: such an epoch is not committed.</summary>
    public static bool Epoch(Logs logs, torch.nn.Module module) =>
        !double.IsFinite(logs.Get("loss") ?? double.NaN) || (logs.Get("first_nonfinite_batch") ?? -1) >= 0
        || logs.Get("val_loss") is double v && !double.IsFinite(v) || FirstIn(module) is not null;
}

/// <summary>Keras EarlyStopping: stop when the monitored value has not improved by min_delta for patience epochs.</summary>
public sealed class EarlyStopping(string monitor = "val_loss", int patience = 10, double minDelta = 0, bool? higherIsBetter = null,
    bool restoreBestWeights = false) : Callback
{
    readonly bool up = higherIsBetter ?? monitor.Contains("acc");
    double best;
    int wait;
    Dictionary<string, torch.Tensor>? bestWeights;
    public int? StoppedEpoch { get; private set; }

    public override void OnTrainBegin(Logs logs) { best = up ? double.NegativeInfinity : double.PositiveInfinity; wait = 0; }

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (logs.Get(monitor) is not double v || double.IsNaN(v)) return;
        if (up ? v > best + minDelta : v < best - minDelta)
        {
            best = v;
            wait = 0;
            if (restoreBestWeights)
            {
                DisposeBestWeights();
                using (torch.NewDisposeScope())
                    bestWeights = Model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().MoveToOuterDisposeScope());
            }
        }
        else if (++wait >= patience)
        {
            StoppedEpoch = epoch;
            Model.StopTraining = true;
            Model.StopReason ??= $"early stopping: {monitor} did not improve for {patience} epochs";
        }
    }

    public override void OnTrainEnd(Logs logs)
    {
        if (StoppedEpoch is not null && bestWeights is not null) Model.Network.load_state_dict(bestWeights);
        DisposeBestWeights();
    }

    void DisposeBestWeights()
    {
        if (bestWeights is null) return;
        foreach (var t in bestWeights.Values) t.Dispose();
        bestWeights = null;
    }
}

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
        rows.Add(HistoryRow.From(epoch, logs));
        Files.WriteAtomic(path, HistoryRow.ToCsv(rows));
        Files.WriteAtomic(Path.ChangeExtension(path, ".json"), JsonSerializer.Serialize(rows, Files.Json));
    }
}

/// <summary>One row of history.csv. Epochs count from 1 in files, as people read them.</summary>
public sealed record HistoryRow(int Epoch, double TrainLoss, double TrainAccuracy, double? ValLoss, double? ValAccuracy, double? ValTop5,
    double Lr, double Seconds)
{
    public static readonly string Header = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_top5,lr,seconds";

    public static HistoryRow From(int epoch, Logs l) => new(epoch + 1, l["loss"], l["accuracy"], l.Get("val_loss"), l.Get("val_accuracy"),
        l.Get("val_top5"), l["lr"], l["seconds"]);

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

/// <summary>
/// Saves last.safetensors (+ optimizer and trainer state, for --resume) after every epoch, and best.safetensors when
/// val_accuracy improves. An epoch whose loss is not finite saves nothing, so the last good checkpoint stays.
/// </summary>
public sealed class ModelCheckpoint(string dir, Action<int, Logs, bool>? onSaved = null) : Callback
{
    public double BestValue { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; } = -1;

    public override void OnEpochEnd(int epoch, Logs logs)
    {
        if (NonFinite.Epoch(logs, Model.Network)) return;
        Checkpoints.Save(Model.Network, Path.Combine(dir, "last.safetensors"));
        double v = logs.Get("val_accuracy") ?? logs["accuracy"];
        bool best = v > BestValue;
        if (best)
        {
            BestValue = v;
            BestEpoch = epoch + 1;
            Checkpoints.Save(Model.Network, Path.Combine(dir, "best.safetensors"));
        }
        Backend.AtomicFile.Write(Path.Combine(dir, "optimizer.bin"), tmp => Checkpoints.SaveOptimizer(Model.Optimizer!, tmp));
        onSaved?.Invoke(epoch, logs, best);
    }
}

public static partial class Checkpoints
{
    /// <summary>The optimizer's state file (TorchSharp's format), whatever the layout of the multi-tensor AdamW's buffer.</summary>
    public static void SaveOptimizer(torch.optim.Optimizer optimizer, string path)
    {
        if (optimizer is MultiTensor.AdamW multi) multi.SaveState(path);
        else ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(path);
    }

    public static void LoadOptimizer(torch.optim.Optimizer optimizer, string path)
    {
        if (optimizer is MultiTensor.AdamW multi) multi.LoadState(path);
        else ((TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(path);
    }

    /// <summary>Writes the state dict (torchvision key names) as safetensors, via a temp file.</summary>
    public static void Save(torch.nn.Module model, string path)
    {
        // Host copies, in PyTorch's key order: the file is the same whatever device trained the weights.
        using (torch.NewDisposeScope()) // the detached views and host copies
        {
            var state = Model.StateDicts.InPyTorchOrder(model).ToDictionary(e => e.Key, e => e.Value.detach().cpu().contiguous()); // channels-last weights too
            Backend.AtomicFile.Write(path, tmp => Safetensors.SaveStateDict(tmp, state));
        }
    }

    /// <summary>Loads a safetensors checkpoint; a missing key or a shape that differs is named in the error.</summary>
    public static void Load(torch.nn.Module model, string path)
    {
        CheckSafetensors(path);
        Dictionary<string, torch.Tensor> saved;
        try { saved = Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new Backend.UserError($"{path} is not a readable safetensors checkpoint ({e.Message.Split('\n')[0]})");
        }
        try { Copy(model, saved, path, newHeadAllowed: false); }
        finally { foreach (var s in saved.Values) s.Dispose(); }
    }
}

public static partial class Checkpoints
{
    /// <summary>
    /// Copies a state dict into <paramref name="network"/>, the one rule for checkpoints and --weights: a tensor missing,
    /// extra or of another shape is named in the error; with <paramref name="newHeadAllowed"/>, a classifier of another
    /// class count is left as the network initialised it, and the returned note says so.
    /// </summary>
    public static string? Copy(torch.nn.Module network, Dictionary<string, torch.Tensor> saved, string source, bool newHeadAllowed)
    {
        string? note = null;
        var own = network.state_dict();
        foreach (var (k, t) in own)
        {
            if (!saved.TryGetValue(k, out var s)) throw new Backend.UserError($"{source}: tensor '{k}' is missing");
            if (s.shape.SequenceEqual(t.shape)) continue;
            bool head = newHeadAllowed && k.StartsWith("classifier.1.", StringComparison.Ordinal) && s.shape.Skip(1).SequenceEqual(t.shape.Skip(1));
            if (!head)
                throw new Backend.UserError($"{source}: tensor '{k}' has shape [{string.Join(", ", s.shape)}], the network needs [{string.Join(", ", t.shape)}]");
            note = $"{source} has {s.shape[0]} classes, this network {t.shape[0]}: the classifier is new (as Keras' include_top=False), the rest is loaded";
        }
        var extra = saved.Keys.Except(own.Keys).ToList();
        if (extra.Count > 0) throw new Backend.UserError($"{source}: unexpected tensor '{extra[0]}' (not a MobileNetV2 state dict with torchvision's names?)");
        using var _ = torch.no_grad();
        foreach (var (k, t) in own)
            if (saved[k].shape.SequenceEqual(t.shape)) t.copy_(saved[k]);
        return note;
    }
}

public static partial class Checkpoints
{
    static readonly Dictionary<string, int> DtypeBytes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>
    /// A checkpoint is untrusted input: its 8-byte header length, the JSON header and every tensor's byte range are
    /// checked against the file's size before anything is allocated from them (a 10-byte file claiming a 2 GB header
    /// made the reader abort the process).
    /// </summary>
    public static void CheckSafetensors(string path)
    {
        long size = new FileInfo(path).Length;
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[8];
        if (size < 8 || f.Read(head) != 8) throw Bad(path, $"{size} bytes is too short for a safetensors header");
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (n == 0 || n > (ulong)(size - 8) || n > 100_000_000) throw Bad(path, $"its header claims {n:N0} bytes, the file has {size - 8:N0} after the length");
        var json = new byte[n];
        f.ReadExactly(json);
        long data = size - 8 - (long)n;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad(path, $"its header is not JSON ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "its header is not a JSON object");
            foreach (var t in doc.RootElement.EnumerateObject())
            {
                if (t.Name == "__metadata__") continue;
                var v = t.Value;
                if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
                    || !DtypeBytes.TryGetValue(dt.GetString()!, out int width))
                    throw Bad(path, $"tensor '{t.Name}' has no known dtype");
                if (!v.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
                    || !v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
                    throw Bad(path, $"tensor '{t.Name}' lacks shape or data_offsets");
                long count = 1;
                foreach (var d in shape.EnumerateArray())
                    if (!d.TryGetInt64(out long dim) || dim < 0 || (count = dim == 0 ? 0 : count > long.MaxValue / Math.Max(dim, 1) ? -1 : count * dim) < 0)
                        throw Bad(path, $"tensor '{t.Name}' has an invalid shape");
                if (!off[0].TryGetInt64(out long a) || !off[1].TryGetInt64(out long b) || a < 0 || b < a || b > data || b - a != count * width)
                    throw Bad(path, $"tensor '{t.Name}' has data_offsets outside the file or not matching its shape");
            }
        }
    }

    static Backend.UserError Bad(string path, string why) => new($"{path} is not a readable safetensors checkpoint: {why}");
}

public static class Files
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) }, // "bf16", "channels_last"
    };

    /// <summary>Write to a temp name, then rename: a reader never sees half a file.</summary>
    public static void WriteAtomic(string path, string text) => Backend.AtomicFile.Write(path, tmp => File.WriteAllText(tmp, text));

    public static void WriteJson<T>(string path, T value) => WriteAtomic(path, JsonSerializer.Serialize(value, Json));
    /// <summary>
    /// Reads a run file, the one rule for all of them: a missing, empty, malformed or inconsistent file is a
    /// <see cref="Backend.UserError"/> naming the file and the field (<paramref name="problem"/> says what is wrong
    /// with a value that parsed), never a runtime message.
    /// </summary>
    public static T ReadJson<T>(string path, Func<T, string?>? problem = null) where T : class
    {
        if (!File.Exists(path)) throw new Backend.UserError($"{path} is missing");
        T? value;
        try { value = JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json); }
        catch (JsonException e)
        {
            string why = e.Message.Split(" Path:")[0].Split(". LineNumber")[0].TrimEnd('.');
            if (why.StartsWith("The JSON value could not be converted", StringComparison.Ordinal)) why = "a value of the wrong type";
            string where = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at {e.Path[2..]}";
            throw new Backend.UserError($"{path} is not readable{where} (line {e.LineNumber + 1}): {why}");
        }
        if (value is null) throw new Backend.UserError($"{path} is empty");
        if (problem?.Invoke(value) is string p) throw new Backend.UserError($"{path}: {p}");
        return value;
    }
}
