using Keras.MobileNet.Data;
using static TorchSharp.torch;

namespace Keras.MobileNet.Engine;

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

    /// <summary>
    /// Evaluate's one loop, for a network or an exported file: every batch of <paramref name="data"/> (in no_grad, each
    /// in its own dispose scope) through <paramref name="inputs"/> and <paramref name="forward"/>, folded with the
    /// confusion matrix.
    /// </summary>
    public static Evaluation Over(IBatchSource data, Device device, int classes, int k, Func<Tensor, Tensor, Tensor> loss,
        Func<Batch, (Tensor X, Tensor Y)> inputs, Func<Tensor, Tensor> forward)
    {
        using var fold = new MetricFold(device, classes, k);
        using (no_grad())
            foreach (var b in data.Epoch(0))
                using (b)
                using (var scope = NewDisposeScope())
                {
                    var (x, y) = inputs(b);
                    var logits = forward(x);
                    fold.Add(loss(logits, y), logits, y, withConfusion: true);
                }
        var r = fold.Read();
        return new Evaluation(r.Loss, r.Accuracy, r.TopK, fold.Confusion(), fold.Samples);
    }

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

    /// <summary>Copies the sums to the host (a sync: at the end of an epoch, or when a callback asks).</summary>
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
