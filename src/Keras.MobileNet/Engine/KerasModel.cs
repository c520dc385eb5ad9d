using Keras.MobileNet.Data;
using TorchSharp;
using static TorchSharp.torch;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Engine;

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
    /// <summary>Set by a callback that stops because training broke (a loss or weight not finite), not because it is done.</summary>
    public bool Failed { get; set; }
    /// <summary>Seed of dropout and other torch randomness; reseeded per epoch so a resumed run matches.</summary>
    public long Seed { get; set; }
    /// <summary>
    /// What reads this network back (preset, width, classes and their names, input size, normalisation): written as
    /// model.json by <see cref="ModelCheckpoint"/>, so <c>predict</c>, <c>evaluate</c> and <c>export</c> open the folder.
    /// <see cref="Applications.MobileNetV2"/> sets it; <c>LoadedData.Describe</c> adds an image folder's classes.
    /// </summary>
    public Runs.ModelCard? Card { get; set; }

    /// <summary>What computes <see cref="Evaluate"/> (so Fit's validation) and <see cref="Predict"/>; see <see cref="EngineInUse"/>.</summary>
    public Model.InferenceEngine InferenceEngine { get; set; } = Model.InferenceEngine.Auto;

    /// <summary>
    /// The engine a forward pass without gradients uses now: ONNX Runtime (the current weights exported in memory, on
    /// the CPU) where asked, or for auto on a CPU when the model has a <see cref="Card"/> (the export is written from
    /// it); libtorch otherwise.
    /// </summary>
    public Model.InferenceEngine EngineInUse => InferenceEngine switch
    {
        Model.InferenceEngine.Torch => Model.InferenceEngine.Torch,
        Model.InferenceEngine.OnnxRuntime when Device.type != DeviceType.CPU =>
            throw new Backend.UserError($"--inference-engine onnxruntime runs on the CPU only (the bundled ONNX Runtime has no CUDA provider), and this model is on {Device}; use --inference-engine torch or auto"),
        Model.InferenceEngine.OnnxRuntime when Card is null =>
            throw new InvalidOperationException("ONNX Runtime inference exports the network from its Card: set KerasModel.Card (Applications.MobileNetV2 does)"),
        Model.InferenceEngine.OnnxRuntime => Model.InferenceEngine.OnnxRuntime,
        _ => Device.type == DeviceType.CPU && Card is not null ? Model.InferenceEngine.OnnxRuntime : Model.InferenceEngine.Torch,
    };

    Export.OrtForward? frozenPrefix;
    int frozenChildren;

    /// <summary>How many children of <c>features</c> run in ONNX Runtime during training (fine-tuning's frozen part), 0 when none.</summary>
    public int FrozenChildrenInOnnxRuntime => frozenPrefix is null ? 0 : frozenChildren;

    /// <summary>
    /// Fine-tuning: the first <paramref name="children"/> children of <c>features</c> are frozen and in inference mode
    /// (see <see cref="FineTuning"/>). With ONNX Runtime in use (a CPU) they run there, exported now from their
    /// weights, and the rest of the network trains in libtorch on their output: the same function, without libtorch's
    /// slow CPU forward for the frozen part. Otherwise (or with 0) every child runs in libtorch. Call it again when the
    /// frozen part changes.
    /// </summary>
    public void FreezePrefix(int children)
    {
        frozenPrefix?.Dispose();
        (frozenPrefix, frozenChildren) = (null, 0);
        if (children <= 0 || Network is not Model.MobileNetV2 net || Card is null || EngineInUse != Model.InferenceEngine.OnnxRuntime) return;
        frozenChildren = Math.Min(children, net.FeatureChildren);
        frozenPrefix = Export.OrtForward.FromPrefix(Card, Network, frozenChildren);
    }

    /// <summary>The network's current weights in ONNX Runtime, when that is the engine in use (disposed by the caller).</summary>
    internal Export.OrtForward? OrtIfInUse() => EngineInUse == Model.InferenceEngine.OnnxRuntime ? Export.OrtForward.FromNetwork(Card!, Network) : null;

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
            SeedEpoch(epoch);
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
            TrimAllocator();
        }
        foreach (var c in all) c.OnTrainEnd(history.Epochs.Count > 0 ? history.Epochs[^1].Logs : Logs.Empty);
        return history;
    }

    /// <summary>Torch's generator (dropout) from the seed and the epoch alone, so a run resumed at any epoch draws as the uninterrupted one.</summary>
    void SeedEpoch(int epoch) => manual_seed(Seed * 100_003 + epoch);

    /// <summary>Hands the native allocator's free pages back to the system between epochs (glibc keeps them otherwise).</summary>
    static void TrimAllocator() => Backend.NativeMemory.Trim();

    void TrainStep(Batch b, MetricFold fold)
    {
        using var scope = NewDisposeScope();
        var (x, y) = OnDevice(b);
        Optimizer!.zero_grad();
        var logits = frozenPrefix is null ? Network.forward(x) : ((Model.MobileNetV2)Network).ForwardFrom(frozenChildren, Laid(frozenPrefix.Forward(x)));
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
    Tensor Laid(Tensor x) => MemoryFormat == Model.MemoryFormat.ChannelsLast && x.dim() == 4 ? Model.Layouts.ChannelsLast(x) : x; // images only

    /// <summary>
    /// eval() and no_grad(): loss (mean of batch means), accuracy, top-k and confusion over <paramref name="data"/>, with
    /// the compiled loss (or <paramref name="loss"/>).
    /// </summary>
    public Evaluation Evaluate(IBatchSource data, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        Network.eval();
        using var ort = OrtIfInUse();
        return MetricFold.Over(data, Device, Classes, compiled?.TopK ?? 5, loss ?? compiled?.Loss ?? Losses.CrossEntropy(), OnDevice,
            x => ort?.Forward(x) ?? Network.forward(x));
    }

    /// <summary>Logits for a batch of normalized images (eval mode, no grad), on the CPU. With ONNX Runtime in use, each
    /// call exports the current weights: give it many images at once, or use an <see cref="Export.OrtForward"/>.</summary>
    public Tensor Predict(Tensor images)
    {
        Network.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var ort = OrtIfInUse();
        var x = images.to(Device);
        var y = ort?.Forward(x) ?? Network.forward(Laid(x));
        return y.cpu().DetachFromDisposeScope();
    }

    public void Dispose()
    {
        frozenPrefix?.Dispose();
        Optimizer?.Dispose();
        Network.Dispose();
    }
}
