using System.Threading.Channels;
using TorchSharp;
using static TorchSharp.torch;

namespace Keras.MobileNet.Data;

/// <summary>A batch on the training device: float32 NCHW images, int64 labels. The consumer disposes it.</summary>
public sealed class Batch(Tensor images, Tensor labels) : IDisposable
{
    public Tensor Images { get; } = images;
    public Tensor Labels { get; } = labels;
    public int Count => (int)Labels.shape[0];

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>Anything Fit and Evaluate can draw batches from.</summary>
public interface IBatchSource
{
    int BatchesPerEpoch { get; }
    /// <summary>Samples per epoch.</summary>
    int Count { get; }
    IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0);
}

/// <summary>Fixed tensors served as batches in order (Keras' fit(x, y)): the same every epoch.</summary>
public sealed class TensorData(torch.Tensor x, torch.Tensor y, int batchSize) : IBatchSource
{
    public int Count => (int)x.shape[0];
    public int BatchesPerEpoch => (Count + batchSize - 1) / batchSize;

    public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0)
    {
        for (int b = skipBatches; b < BatchesPerEpoch; b++)
        {
            long start = (long)b * batchSize, n = Math.Min(batchSize, Count - start);
            yield return new Batch(x.narrow(0, start, n).alias(), y.narrow(0, start, n).alias());
        }
    }
}

/// <summary>
/// source -> shuffle(seed) -> map(decode + transform, parallel) -> batch -> prefetch, the tf.data way.
/// Order and augmentation are pure functions of (seed, epoch, index): the same seed gives the same batches bit
/// for bit with any number of workers, and a resumed run sees what an uninterrupted one would have.
/// </summary>
public sealed class DataLoader(IImageDataset dataset, int batchSize, bool shuffle, long seed, int workers, Device device,
    int prefetch = 2, bool dropLast = false, int minBatch = 1) : IBatchSource
{
    public int Count => dataset.Count;
    public IImageDataset Dataset => dataset;
    public int BatchSize => batchSize;
    public int Workers => Math.Max(1, workers);

    /// <summary>The same dataset and settings with another seed (a sweep's cells share the decoded images).</summary>
    public DataLoader WithSeed(long other) =>
        other == seed ? this : new(dataset, batchSize, shuffle, other, workers, device, prefetch, dropLast, minBatch) { HandOffs = HandOffs, Gather = Gather };

    public int BatchesPerEpoch => dropLast ? dataset.Count / batchSize : (dataset.Count + batchSize - 1) / batchSize;

    /// <summary>An optional observer of the tensors this loader's thread hands to its consumer (memory probes use it).</summary>
    public HandOffCounter? HandOffs { get; init; }

    /// <summary>
    /// Where the train transform's per-sample work runs: null, on the host workers (each sample's <see
    /// cref="IImageTransform.Finish"/>); a <see cref="GatherCache"/> of this dataset, as one batched gather on its device.
    /// The same batches either way.
    /// </summary>
    public GatherCache? Gather { get; init; }

    /// <summary>The dataset indices of an epoch in the order they are served.</summary>
    public int[] Order(int epoch) =>
        shuffle ? CounterRng.Permutation(seed, epoch, dataset.Count) : Enumerable.Range(0, dataset.Count).ToArray();

    /// <summary>
    /// Builds one batch from the given dataset indices (used by the producer, and directly by tests). A sample whose
    /// image cannot be read now (streaming mode: the file changed or went away after the scan; logged by the dataset)
    /// is left out of the batch, as the in-memory build leaves it out of the dataset: never trained as a blank image.
    /// </summary>
    public unsafe Batch MakeBatch(int epoch, ReadOnlySpan<int> indices)
    {
        if (Gather is { } gather) return Gathered(gather, epoch, indices);
        int n = indices.Length, s = dataset.Transform.OutputSize, per = 3 * s * s;
        var images = empty([n, 3, s, s], ScalarType.Float32);
        var labels = new long[n];
        var read = new bool[n];
        float* basePtr;
        fixed (byte* raw = images.bytes) basePtr = (float*)raw; // native CPU memory: the pointer stays valid
        var idx = indices.ToArray();
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = Workers }, i =>
        {
            var img = dataset.Prepared(idx[i]);
            if (img is null) return;
            dataset.Transform.Finish(img, seed, epoch, idx[i], new Span<float>(basePtr + (long)i * per, per));
            labels[i] = dataset.Label(idx[i]);
            read[i] = true;
        });
        if (read.Contains(false))
        {
            var kept = Enumerable.Range(0, n).Where(i => read[i]).Select(i => (long)i).ToArray();
            using var keep = tensor(kept, ScalarType.Int64);
            using var all = images;
            images = all.index_select(0, keep);
            labels = kept.Select(i => labels[i]).ToArray();
        }
        var labelTensor = tensor(labels, ScalarType.Int64);
        if (device.type == DeviceType.CPU) return new Batch(images, labelTensor);
        // Pinned host memory lets the copy to the device run asynchronously while the previous batch trains.
        using var pinned = images.pin_memory();
        var batch = new Batch(pinned.to(device, non_blocking: true), labelTensor.to(device));
        images.Dispose();
        labelTensor.Dispose();
        return batch;
    }

    /// <summary>A batch from the gather cache: the images made on its device, moved to the training device if that is another.</summary>
    Batch Gathered(GatherCache gather, int epoch, ReadOnlySpan<int> indices)
    {
        var labels = new long[indices.Length];
        for (int i = 0; i < labels.Length; i++) labels[i] = dataset.Label(indices[i]);
        var images = gather.Images(seed, epoch, indices);
        if (device.type == DeviceType.CPU && gather.Device.type == DeviceType.CPU) return new Batch(images, tensor(labels, ScalarType.Int64));
        using var labelTensor = tensor(labels, ScalarType.Int64);
        if (gather.Device.type == device.type && gather.Device.index == device.index) return new Batch(images, labelTensor.to(device));
        using (images)
        {
            using var pinned = images.pin_memory(); // a cache on the host for a GPU: the copy overlaps the step, as the host path's
            return new Batch(pinned.to(device, non_blocking: true), labelTensor.to(device));
        }
    }

    /// <summary>The batches of one epoch; the next ones are prepared on a background thread while this one trains.</summary>
    public IEnumerable<Batch> Epoch(int epoch, int skipBatches = 0)
    {
        var order = Order(epoch);
        int batches = BatchesPerEpoch;
        var channel = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Math.Max(1, prefetch)) { SingleReader = true, SingleWriter = true });
        using var cts = new CancellationTokenSource();
        var producer = Task.Run(async () =>
        {
            try
            {
                for (int b = skipBatches; b < batches && !cts.IsCancellationRequested; b++)
                {
                    int start = b * batchSize, count = Math.Min(batchSize, order.Length - start);
                    long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
                    var batch = MakeBatch(epoch, order.AsSpan(start, count));
                    // Every image of it unreadable (logged), or so many that fewer than minBatch are left (a training batch
                    // of one image gives BatchNorm one value per channel in the last layers): left out, never trained.
                    if (batch.Count < Math.Max(1, minBatch)) { batch.Dispose(); continue; }
                    HandOffs?.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount - before);
                    try { await channel.Writer.WriteAsync(batch, cts.Token); }
                    catch (OperationCanceledException) { batch.Dispose(); break; }
                }
                channel.Writer.TryComplete();
            }
            catch (Exception e) { channel.Writer.TryComplete(e); }
        });
        try
        {
            while (true)
            {
                Batch? next;
                try
                {
                    if (!channel.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) break;
                    if (!channel.Reader.TryRead(out next)) continue;
                }
                catch (ChannelClosedException e) when (e.InnerException is not null) { throw e.InnerException; }
                yield return next;
            }
        }
        finally
        {
            cts.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
            while (channel.Reader.TryRead(out var left)) left.Dispose();
        }
    }
}

/// <summary>
/// Tensors that loader threads made and handed to their consumers, as TorchSharp's per-thread dispose-scope statistics
/// count them. Those statistics see such a tensor created on the loader's thread and disposed on the consumer's, so a
/// consumer's <c>ThreadTotalLiveCount</c> plus <see cref="Count"/> is what is alive of both.
/// </summary>
public sealed class HandOffCounter
{
    long count;
    public long Count => Interlocked.Read(ref count);
    public void Add(long n) => Interlocked.Add(ref count, n);
}
