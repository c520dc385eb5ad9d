using System.Collections.Immutable;
using Keras.MobileNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Training;

/// <summary>Keras' flat logs dict as an immutable value: "loss", "accuracy", "val_loss", "val_accuracy", "lr", ...</summary>
public sealed record Logs(ImmutableSortedDictionary<string, double> Values)
{
    public static readonly Logs Empty = new(ImmutableSortedDictionary<string, double>.Empty);
    public double this[string key] => Values[key];
    public double? Get(string key) => Values.TryGetValue(key, out var v) ? v : null;
    public Logs With(string key, double value) => new(Values.SetItem(key, value));
    public Logs Merge(Logs other) => new(Values.SetItems(other.Values));
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

/// <summary>Compile-time choices: how to make the optimizer, the loss, which metrics.</summary>
public sealed record CompileOptions(Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> Optimizer, Func<Tensor, Tensor, Tensor> Loss, int TopK = 5);

public static class Losses
{
    /// <summary>Cross-entropy with label smoothing (TorchSharp's functional form has the option; the factory has not).</summary>
    public static Func<Tensor, Tensor, Tensor> CrossEntropy(double labelSmoothing = 0.0) =>
        (logits, target) => nn.functional.cross_entropy(logits, target, label_smoothing: labelSmoothing);
}

public static class Optimizers
{
    /// <summary>
    /// AdamW with PyTorch's defaults, except that weight decay is always stated (TorchSharp's default is 0, PyTorch's
    /// 0.01). Multi-tensor (one buffer, a few kernels per step: <see cref="MultiTensor.AdamW"/>) unless
    /// <paramref name="perParameter"/> asks for TorchSharp's own, which loops over the parameter tensors.
    /// </summary>
    public static Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> AdamW(double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool perParameter = false) =>
        perParameter
            ? ps => optim.AdamW(ps, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay)
            : ps => new MultiTensor.AdamW(ps, lr, beta1, beta2, eps, weightDecay);
}

/// <summary>What Evaluate returns: the notebook's loss (mean of batch means) and accuracy, top-k, and the confusion matrix.</summary>
public sealed record Evaluation(double Loss, double Accuracy, double TopK, long[,] Confusion, int Samples)
{
    public double[] PerClassAccuracy()
    {
        int n = Confusion.GetLength(0);
        return Enumerable.Range(0, n).Select(i =>
        {
            long row = Enumerable.Range(0, n).Sum(j => Confusion[i, j]);
            return row == 0 ? double.NaN : (double)Confusion[i, i] / row;
        }).ToArray();
    }

    /// <summary>The confusion matrix as rows (true class) of counts per predicted class, as JSON writes it.</summary>
    public long[][] ConfusionRows()
    {
        int n = Confusion.GetLength(0);
        return Enumerable.Range(0, n).Select(i => Enumerable.Range(0, n).Select(j => Confusion[i, j]).ToArray()).ToArray();
    }
}

/// <summary>
/// Metric accumulation on the training device: sums of batch-mean losses, correct and top-k counts, and the first
/// batch whose loss was not finite. Read back at the end of an epoch, and by callbacks only when they ask (no host
/// sync per batch).
/// </summary>
sealed class MetricFold : IDisposable
{
    readonly Tensor lossSum, correct, topk, firstBad, confusion;
    readonly int classes, k;
    public int Batches { get; private set; }
    public int Samples { get; private set; }

    public MetricFold(Device device, int classes, int k)
    {
        (this.classes, this.k) = (classes, Math.Min(k, classes));
        lossSum = zeros(1, float64, device);
        correct = zeros(1, int64, device);
        topk = zeros(1, int64, device);
        firstBad = full(1, -1L, int64, device);
        confusion = zeros(classes * classes, int64, device);
    }

    public void Add(Tensor loss, Tensor logits, Tensor labels, bool withConfusion = false)
    {
        using var _ = NewDisposeScope();
        using var __ = no_grad();
        var l = loss.detach().to(float64).reshape(1);
        lossSum.add_(l);
        var pred = logits.argmax(1);
        correct.add_(pred.eq(labels).sum());
        var top = logits.topk(k, 1).indexes;
        topk.add_(top.eq(labels.unsqueeze(1)).any(1).sum());
        // Remember the first non-finite batch: where firstBad < 0 and the loss is not finite, store this batch index.
        var bad = l.isfinite().logical_not().logical_and(firstBad.lt(0));
        firstBad.copy_(where(bad, full(1, (long)Batches, int64, firstBad.device), firstBad));
        if (withConfusion) confusion.add_(bincount(labels * classes + pred, minlength: classes * classes));
        Batches++;
        Samples += (int)labels.shape[0];
    }

    /// <summary>The one host sync.</summary>
    public (double Loss, double Accuracy, double TopK, int FirstBadBatch) Read()
    {
        using var _ = NewDisposeScope(); // the host copies
        double ls = lossSum.cpu().item<double>();
        long c = correct.cpu().item<long>(), t = topk.cpu().item<long>(), bad = firstBad.cpu().item<long>();
        return (Batches == 0 ? double.NaN : ls / Batches, Samples == 0 ? double.NaN : (double)c / Samples,
            Samples == 0 ? double.NaN : (double)t / Samples, (int)bad);
    }

    public long[,] Confusion()
    {
        using var _ = NewDisposeScope();
        var flat = confusion.cpu().data<long>().ToArray();
        var m = new long[classes, classes];
        for (int i = 0; i < classes; i++) for (int j = 0; j < classes; j++) m[i, j] = flat[i * classes + j];
        return m;
    }

    public void Dispose()
    {
        foreach (var t in new[] { lossSum, correct, topk, firstBad, confusion }) t.Dispose();
    }
}

/// <summary>
/// The Keras-shaped model: Compile, Fit, Evaluate, Predict over a TorchSharp module. Training state the callbacks
/// may touch (StopTraining, the optimizer's learning rate) is exposed here, as in Keras.
/// </summary>
public sealed class KerasModel : IDisposable
{
    CompileOptions? compiled;

    /// <summary>
    /// The network moves to the device and takes its precision and layout here, before Compile makes the optimizer:
    /// bf16 = convolutions compute in bf16 over fp32 weights (<see cref="Model.MixedConv2d"/>); channels-last = conv
    /// weights and each batch get NHWC strides (auto: on CUDA only).
    /// </summary>
    public KerasModel(nn.Module<Tensor, Tensor> network, Device device, int classes, Model.Precision precision = Model.Precision.Fp32,
        Model.MemoryFormat memoryFormat = Model.MemoryFormat.Auto)
    {
        Network = network.to(device);
        (Device, Classes, Precision) = (device, classes, precision);
        MemoryFormat = Model.Layouts.Resolve(memoryFormat, device);
        Model.Layouts.Apply(Network, precision, MemoryFormat);
    }

    public nn.Module<Tensor, Tensor> Network { get; }
    public Model.Precision Precision { get; }
    /// <summary>Contiguous or ChannelsLast (Auto resolved for the device).</summary>
    public Model.MemoryFormat MemoryFormat { get; }
    public Device Device { get; }
    public int Classes { get; }
    public optim.Optimizer? Optimizer { get; private set; }
    public bool StopTraining { get; set; }
    public string? StopReason { get; set; }
    /// <summary>Seed of dropout and other torch randomness; reseeded per epoch so a resumed run matches.</summary>
    public long Seed { get; set; }

    public void Compile(CompileOptions options)
    {
        compiled = options;
        Optimizer = options.Optimizer(Network.parameters());
    }

    public double LearningRate
    {
        get => Optimizer!.ParamGroups.First().LearningRate;
        set { foreach (var g in Optimizer!.ParamGroups) g.LearningRate = value; }
    }

    /// <summary>During an epoch: reads the running metrics (one host sync, so callers ration it).</summary>
    public Func<(double Loss, double Accuracy, int FirstBadBatch)>? RunningState { get; private set; }

    public History Fit(IBatchSource train, int epochs, IBatchSource? validation = null, IEnumerable<Callback>? callbacks = null,
        int initialEpoch = 0, int skipBatchesInFirstEpoch = 0)
    {
        if (compiled is null || Optimizer is null) throw new InvalidOperationException("Compile the model before Fit");
        var history = new History();
        var all = (callbacks ?? []).Prepend(history).ToList();
        foreach (var c in all) c.Model = this;
        StopTraining = false;
        foreach (var c in all) c.OnTrainBegin(Logs.Empty);
        for (int epoch = initialEpoch; epoch < epochs && !StopTraining; epoch++)
        {
            manual_seed(Seed * 100_003 + epoch);
            bool quiet = Backend.QuietGc.Enter(); // no collection inside libtorch calls of this epoch (see QuietGc)
            try
            {
                foreach (var c in all) c.OnEpochBegin(epoch, Logs.Empty.With("lr", LearningRate));
                var clock = System.Diagnostics.Stopwatch.StartNew();
                double lr = LearningRate;
                using var fold = new MetricFold(Device, Classes, compiled.TopK);
                RunningState = () => { var r = fold.Read(); return (r.Loss, r.Accuracy, r.FirstBadBatch); };
                Network.train();
                foreach (var c in all) c.OnTrainingMode(epoch);
                int batch = 0;
                foreach (var b in train.Epoch(epoch, epoch == initialEpoch ? skipBatchesInFirstEpoch : 0))
                {
                    using (b)
                    {
                        var batchLogs = Logs.Empty.With("batch", batch).With("size", b.Count);
                        foreach (var c in all) c.OnBatchBegin(batch, batchLogs);
                        TrainStep(b, fold);
                        foreach (var c in all) c.OnBatchEnd(batch, batchLogs);
                    }
                    batch++;
                    if (StopTraining) break;
                }
                var (loss, acc, top, bad) = fold.Read();
                RunningState = null;
                double seconds = clock.Elapsed.TotalSeconds;
                var logs = Logs.Empty.With("loss", loss).With("accuracy", acc).With($"top{compiled.TopK}", top)
                    .With("lr", lr).With("seconds", seconds).With("images_per_second", fold.Samples / Math.Max(seconds, 1e-9))
                    .With("first_nonfinite_batch", bad);
                if (validation is not null && bad < 0)
                {
                    var v = Evaluate(validation);
                    logs = logs.With("val_loss", v.Loss).With("val_accuracy", v.Accuracy).With($"val_top{compiled.TopK}", v.TopK);
                }
                foreach (var c in all) c.OnEpochEnd(epoch, logs);
            }
            finally { if (quiet) Backend.QuietGc.Exit(); }
            Backend.NativeMemory.Trim();
        }
        foreach (var c in all) c.OnTrainEnd(history.Epochs.Count > 0 ? history.Epochs[^1].Logs : Logs.Empty);
        return history;
    }

    void TrainStep(Batch b, MetricFold fold)
    {
        using var scope = NewDisposeScope();
        var (x, y) = OnDevice(b);
        Optimizer!.zero_grad();
        var logits = Network.forward(x);
        var loss = compiled!.Loss(logits, y);
        loss.backward();
        Optimizer.step();
        fold.Add(loss, logits, y);
    }

    /// <summary>Loaders deliver on the device already; tensors given directly (TensorData) may still be elsewhere.</summary>
    (Tensor X, Tensor Y) OnDevice(Batch b)
    {
        var (x, y) = b.Images.device == Device ? (b.Images, b.Labels) : (b.Images.to(Device), b.Labels.to(Device));
        return (Laid(x), y);
    }

    /// <summary>A batch in the network's layout (a channels-last view, owned by the caller's dispose scope, or itself).</summary>
    Tensor Laid(Tensor x) => MemoryFormat == Model.MemoryFormat.ChannelsLast ? Model.Layouts.ChannelsLast(x) : x;

    /// <summary>eval() and no_grad(): loss (mean of batch means), accuracy, top-k, confusion matrix.</summary>
    public Evaluation Evaluate(IBatchSource data)
    {
        var loss = compiled?.Loss ?? Losses.CrossEntropy();
        int k = compiled?.TopK ?? 5;
        using var fold = new MetricFold(Device, Classes, k);
        Network.eval();
        using (no_grad())
            foreach (var b in data.Epoch(0))
                using (b)
                using (var scope = NewDisposeScope())
                {
                    var (x, y) = OnDevice(b);
                    var logits = Network.forward(x);
                    fold.Add(loss(logits, y), logits, y, withConfusion: true);
                }
        var r = fold.Read();
        return new Evaluation(r.Loss, r.Accuracy, r.TopK, fold.Confusion(), fold.Samples);
    }

    /// <summary>Logits for a batch of normalized images (eval mode, no grad), on the CPU.</summary>
    public Tensor Predict(Tensor images)
    {
        Network.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = images.to(Device);
        var y = Network.forward(Laid(x));
        return y.cpu().DetachFromDisposeScope();
    }

    public void Dispose()
    {
        Optimizer?.Dispose();
        Network.Dispose();
    }
}
