using Microsoft.Extensions.Logging;
using System.Globalization;
using Keras.MobileNet.Architecture;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Config;
using Keras.MobileNet.Data;
using Keras.MobileNet.Model;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Training;

/// <summary>One run in its folder: the model card, the network, the callbacks, Fit, and the summary.</summary>
public static class SingleRun
{
    public static RunResult Train(TrainOptions o, double width, string folder, Device device, LoadedData data, RunHooks hooks,
        ILogger log, double? estimateSeconds = null)
    {
        // One run per folder, for the whole run; a fresh start never takes over a folder of other files.
        using var run = o.Resume ? RunFolder.OpenExisting(folder, o.TensorBoard) : RunFolder.OpenFresh(folder, o.TensorBoard, o.ReuseOut);
        var stored = run.ReadState();
        TrainerState state = TrainerState.Empty;
        if (o.Resume)
        {
            if (stored is null) throw new UserError($"--resume: {folder} holds no run to resume (no trainer_state.json)");
            CheckSameRun(folder, o, width);
            CheckSameData(folder, data.Record);
            run.Publish(stored); // what a kill between the commit and the derived files left, made whole
            state = stored with { History = stored.History ?? HistoryRow.ReadCsv(Path.Combine(folder, RunReader.History)).Where(r => r.Epoch <= stored.CompletedEpochs).ToList() };
            log.Line($"resuming {folder} after epoch {state.CompletedEpochs}");
        }
        else if (stored is not null)
            throw new UserError($"{folder} already holds a run; use --resume to continue it or another --out");
        else run.Sweep(null);
        var card = Card(o, width, data.ClassFolders, data.ClassNames, data.Transform);
        var spec = card.Spec();
        var counts = Counts.Of(spec, o.ImageSize, o.ImageSize);
        if (!o.Resume)
        {
            Files.WriteJson(Path.Combine(folder, RunReader.Card), card);
            Files.WriteJson(Path.Combine(folder, RunReader.Options), o with { Data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.Data)) });
            if (data.Record is { } record) Files.WriteJson(Path.Combine(folder, DataRecord.File), record);
        }
        log.Line($"{folder}: MobileNetV2 {Files.Word(o.Arch)} width {width}, {counts.Trainable:N0} trainable params, {counts.Macs:N0} MACs, device {device}");

        using var model = Build(o, spec, device);
        (model.Card, model.InferenceEngine) = (card, o.InferenceEngine); // validation on a CPU runs in ONNX Runtime unless asked otherwise
        if (model.EngineInUse == InferenceEngine.OnnxRuntime) log.Line("validation: ONNX Runtime on the CPU (the epoch's weights exported in memory)");
        if (state.CompletedEpochs > 0)
        {
            run.Restore(state, model.Network, model.Optimizer!);
        }
        else if (data.WeightsFile is string wf)
        {
            string? head = Pretrained.Load(model.Network, wf);
            log.Line($"starting from {o.Weights}" + (wf != o.Weights ? $" ({wf})" : "") + (head is null ? "" : $"; {head}"));
        }

        int steps = data.Train.BatchesPerEpoch;
        var commit = new ModelCheckpoint(run, state, data.Train.Dataset.Count);
        var callbacks = new List<Callback> { Schedule(o, steps), new TerminateOnNaN(), commit };
        if (hooks.Progress?.Invoke(o.Epochs, steps) is Callback progress) callbacks.Add(progress);
        if (o.UnfreezeEpoch is int unfreeze)
        {
            callbacks.Add(new FineTuning(unfreeze, o.UnfreezeFrom, o.BnMode == BatchNormMode.Train));
            log.Line($"fine-tuning: features frozen for epochs 1-{unfreeze} (BatchNorm in inference mode), then features.{o.UnfreezeFrom} on train " +
                $"at lr {o.PhaseTwoLr:G3} (BatchNorm {Files.Word(o.BnMode)})");
        }
        if (o.EarlyStoppingPatience > 0) callbacks.Add(new EarlyStopping("val_accuracy", o.EarlyStoppingPatience));
        if (hooks.ThrottleMs > 0) callbacks.Add(new Throttle(hooks.ThrottleMs));

        var wall = System.Diagnostics.Stopwatch.StartNew();
        using (var signals = hooks.Stop?.Invoke())
        {
            if (signals is not null) callbacks.Add(new StopOnSignal(signals, folder, () => commit.State.CompletedEpochs)); // last: after the epoch's commit
            model.Fit(data.Train, o.Epochs, data.Val, callbacks, initialEpoch: state.CompletedEpochs);
        }
        wall.Stop();

        var status = model.Failed ? RunStatus.Failed : model.StopReason is null ? RunStatus.Completed : RunStatus.EarlyStopped;
        bool failed = status == RunStatus.Failed;
        state = commit.State;
        var rows = state.History ?? [];
        string bestPath = Path.Combine(folder, RunReader.Best);
        if (!failed && File.Exists(bestPath))
        {
            // The confusion matrix of the best checkpoint, for confusion.png and the report.
            Checkpoints.Load(model.Network, bestPath);
            var ev = model.Evaluate(data.Val);
            Files.WriteJson(Path.Combine(folder, RunReader.Confusion), new ConfusionData(data.ClassNames, ev.ConfusionRows()));
        }
        state = state with { Finished = !failed };
        if (state.CompletedEpochs == 0)
        {
            // Nothing was committed (the first epoch failed): no state, so the next start into this folder begins afresh;
            // summary.json says why it stopped.
            log.Line($"{folder}: no epoch was committed ({model.StopReason ?? "stopped in epoch 1"}); nothing of this run is kept, " +
                "and a new start into this folder, with these or other options, begins afresh");
            var failedSummary = Summary(o, width, spec, counts, state, rows, device, model, status);
            Files.WriteJson(Path.Combine(folder, RunReader.Summary), failedSummary); // why it stopped; replaced by the next start
            return new RunResult(folder, failedSummary, rows);
        }
        run.WriteState(state);
        var summary = Summary(o, width, spec, counts, state, rows, device, model, status) with { Latency = o.Latency == LatencyMeasure.None ? null : MeasureLatency(card, model, log) };
        if (o.Latency == LatencyMeasure.Int8) summary = summary with { Int8Latency = MeasureInt8Latency(card, model, data.Val, summary.Latency, log) };
        Files.WriteJson(Path.Combine(folder, RunReader.Summary), summary);
        if (model.StopReason is not null) log.Line(model.StopReason);
        log.Line($"{folder}: best val_accuracy {(summary.BestValAccuracy is double b ? b.ToString("F4", CultureInfo.InvariantCulture) : "-")}" +
            $" (epoch {(summary.BestEpoch > 0 ? summary.BestEpoch : "-")}), {rows.Count} epochs; this session trained for " +
            Estimate.Describe(wall.Elapsed.TotalSeconds) + (estimateSeconds is double est ? $" (estimated {Estimate.Describe(est)})" : ""));
        return new RunResult(folder, summary, rows);
    }

    static RunSummary Summary(TrainOptions o, double width, NetworkSpec spec, ModelCounts counts, TrainerState state, IReadOnlyList<HistoryRow> rows,
        Device device, KerasModel model, RunStatus status) =>
        new(o.Arch, width, spec.Classes, o.ImageSize, counts.Trainable, counts.NonTrainable, counts.Macs,
            double.IsFinite(state.BestValAccuracy) ? state.BestValAccuracy : null, state.BestEpoch,
            rows.LastOrDefault()?.ValAccuracy, rows.Count, state.TrainSeconds, state.TrainImages / Math.Max(state.TrainSeconds, 1e-9), device.ToString(), o.Seed,
            model.StopReason, o, status);

    /// <summary>
    /// The network's CPU latency at batch 1 in ONNX Runtime, measured once at the end of a run on the machine it ran
    /// on, for the width comparison (a measurement that fails is said and left out, never a failed run).
    /// </summary>
    static MeasuredLatency? MeasureLatency(ModelCard card, KerasModel model, ILogger log)
    {
        try
        {
            var latency = Export.Latency.Measure(card, model.Network);
            log.Line($"latency: {latency.MedianMs:F2} ms median at batch 1 ({latency.Engine}, {latency.Machine})");
            return latency;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log.Warning($"warning: latency not measured: {e.Message.Split('\n')[0]}");
            return null;
        }
    }

    /// <summary>
    /// As <see cref="MeasureLatency"/>, of the network quantized to int8 as <c>export --int8</c> does by default, its
    /// ranges calibrated on up to 256 of the run's val images (spread over the classes, through the val transform).
    /// </summary>
    static MeasuredLatency? MeasureInt8Latency(ModelCard card, KerasModel model, DataLoader val, MeasuredLatency? fp32, ILogger log)
    {
        try
        {
            var (batches, images) = Export.Calibration.FromLoader(val, 256);
            var latency = Export.Latency.MeasureInt8(card, model.Network, batches);
            log.Line($"latency: {latency.MedianMs:F2} ms median at batch 1 ({latency.Engine}, calibrated on {images} val images" +
                (fp32 is null ? ")" : $"; {fp32.MedianMs / latency.MedianMs:F2}x float32)"));
            return latency;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log.Warning($"warning: int8 latency not measured: {e.Message.Split('\n')[0]}");
            return null;
        }
    }

    /// <summary>The model card of a run: the preset's dropout unless --dropout says otherwise (the spec is the one place that knows it).</summary>
    public static ModelCard Card(TrainOptions o, double width, string[] classFolders, string[] classNames, TransformConfig transform)
    {
        double dropout = MobileNetV2Spec.Build(o.Arch, width, classFolders.Length, o.Dropout).Dropout;
        return new ModelCard(o.Arch, width, classFolders.Length, classFolders, classNames, o.ImageSize, transform.Mean, transform.Std, dropout);
    }

    /// <summary>The network of a spec, initialised from the run's seed, compiled with the run's optimizer and loss.</summary>
    public static KerasModel Build(TrainOptions o, NetworkSpec spec, Device device)
    {
        manual_seed(o.Seed); // initialisation is a function of the seed too
        var model = new KerasModel(Factories.MobileNetV2(spec), device, spec.Classes, o.Precision, o.MemoryFormat) { Seed = o.Seed };
        model.Compile(Compile(o));
        return model;
    }

    /// <summary>AdamW with the run's learning rate and weight decay; cross-entropy with its label smoothing.</summary>
    public static CompileOptions Compile(TrainOptions o) =>
        new(Optimizers.AdamW(o.Lr, o.WeightDecay), Losses.CrossEntropy(o.LabelSmoothing));

    /// <summary>The learning-rate callback of the options: per-epoch cosine (two phases when fine-tuning) or per-step warm-up + cosine.</summary>
    public static Callback Schedule(TrainOptions o, int stepsPerEpoch) => o.Schedule == ScheduleKind.Step
        ? new StepLearningRateScheduler(Schedules.WarmupCosine(o.Lr, o.FloorLr, (long)o.Epochs * stepsPerEpoch, (long)(o.WarmupEpochs * stepsPerEpoch)), stepsPerEpoch)
        : new LearningRateScheduler(o.UnfreezeEpoch is int ue
            ? Schedules.TwoPhaseCosine(o.Lr, o.PhaseTwoLr, o.FloorLr, ue, o.Epochs)
            : Schedules.CosineAnnealing(o.Lr, o.FloorLr, o.Epochs));

    /// <summary>The data found now against the run's data.json (runs from before it was written are not compared).</summary>
    static void CheckSameData(string folder, DataRecord? now)
    {
        string path = Path.Combine(folder, DataRecord.File);
        if (now is null || !File.Exists(path)) return;
        var stored = Files.ReadJson<DataRecord>(path, d => d.Root is null || d.Classes is null ? "root and classes are needed" : null);
        if (stored.Difference(now) is string why)
            throw new UserError($"--resume: {folder} {why}; resume with the run's data or train into another --out");
    }

    /// <summary>
    /// The options that define a run, from <see cref="TrainOptions.RunDefining"/>: a resume with any of them changed would
    /// not continue the same run. A difference is a <see cref="RunMismatch"/> naming the field (the command line names its word).
    /// </summary>
    public static void CheckSameRun(string folder, TrainOptions o, double width)
    {
        string path = Path.Combine(folder, RunReader.Options);
        if (!File.Exists(path)) throw new UserError($"--resume: {path} is missing, so the run cannot be checked");
        var s = Files.ReadJson<TrainOptions>(path, t => t.Widths is null || t.Data is null ? "widths and data are missing" : null);
        foreach (var (field, value) in TrainOptions.RunDefining)
            if (!Equals(value(s, s.Widths.FirstOrDefault()), value(o, width)))
                throw new RunMismatch(folder, field, Show(value(s, s.Widths.FirstOrDefault())), Show(value(o, width)));
    }

    static string Show(object? v) => v switch
    {
        null => "(default)", double d => d.ToString("R", CultureInfo.InvariantCulture), Enum e => Files.Word(e), _ => v.ToString()!,
    };
}

/// <summary>A resume whose options differ from the run's in a field that defines it.</summary>
public sealed class RunMismatch(string folder, string field, string stored, string now)
    : UserError($"--resume: {folder} was trained with {field} {stored}, not {now}; resume with the same options or train into another --out")
{
    public string Folder { get; } = folder;
    /// <summary>The <see cref="TrainOptions"/> property that differs.</summary>
    public string Field { get; } = field;
    public string Stored { get; } = stored;
    public string Now { get; } = now;
}
