using System.Text.Json;
using Keras.MobileNet.Cli;

namespace Keras.MobileNet.Tests;

/// <summary>
/// The training recipe pinned down: each option reaches what it configures (parsed at the command line, through the
/// library's own wiring), and the transforms equal torchvision's. Each test here was seen failing with a bug planted.
/// </summary>
public sealed class RecipePinTests
{
    static TrainOptions Parse(params string[] args)
    {
        var (parsed, options) = TrainCommand.Parse(args);
        Assert.That(parsed.Errors, Is.Empty, string.Join("; ", parsed.Errors.Select(e => e.Message)));
        return options;
    }

    [TestCase("paper", Preset.Paper), TestCase("Paper", Preset.Paper), TestCase("NOTEBOOK", Preset.Notebook), TestCase("Notebook", Preset.Notebook)]
    public void Arch_parses_in_any_case(string word, Preset preset) => Assert.That(Parse("--arch", word).Arch, Is.EqualTo(preset));

    [Test]
    public void Every_recipe_option_reaches_the_typed_options()
    {
        var o = Parse("--weight-decay", "0.05", "--min-lr", "2e-5", "--label-smoothing", "0.3", "--dropout", "0.4", "--seed", "7",
            "--schedule", "step", "--lr", "0.01", "--bn-mode", "train", "--size", "160", "--dataset", "folder", "--device", "cuda:1");
        Assert.That((o.WeightDecay, o.MinLr, o.LabelSmoothing, o.Dropout, o.Seed, o.Schedule, o.Lr, o.BnMode, o.Size, o.Dataset, o.Device),
            Is.EqualTo((0.05, (double?)2e-5, 0.3, (double?)0.4, 7L, ScheduleKind.Step, 0.01, BatchNormMode.Train, ImagenetteSize.Px160,
                DatasetKind.Folder, new Backend.DeviceChoice(Backend.DeviceKind.Cuda, 1))));
        var d = Parse();
        Assert.That((d.WeightDecay, d.MinLr, d.LabelSmoothing, d.Dropout, d.Seed, d.Schedule, d.Arch),
            Is.EqualTo((0.0, (double?)null, 0.1, (double?)null, 0L, ScheduleKind.Epoch, Preset.Paper)), "the notebook's recipe by default");
    }

    static ModelCard Card(TrainOptions o) => SingleRun.Card(o, 0.25, ["a", "b"], ["a", "b"], TransformConfig.For(32));

    /// <summary>The fraction of a ones vector the network's classifier dropout zeroes in training mode.</summary>
    static double DroppedFraction(ModelCard card)
    {
        manual_seed(1);
        using var net = Factories.MobileNetV2(card.Spec());
        var dropout = (nn.Module<Tensor, Tensor>)net.named_modules().First(m => m.name == "classifier.0").module;
        dropout.train();
        using var y = dropout.forward(ones(20_000));
        return y.eq(0).to(float32).mean().item<float>();
    }

    [Test]
    public void Dropout_is_the_paper_s_0_2_the_notebook_s_0_or_the_option_s_and_reaches_the_network()
    {
        var paper = Card(Parse("--arch", "Paper"));
        var notebook = Card(Parse("--arch", "notebook"));
        var chosen = Card(Parse("--dropout", "0.5"));
        Assert.That((paper.Dropout, notebook.Dropout, chosen.Dropout), Is.EqualTo((0.2, 0.0, 0.5)));
        Assert.That(DroppedFraction(paper), Is.EqualTo(0.2).Within(0.02));
        Assert.That(DroppedFraction(notebook), Is.Zero);
        Assert.That(DroppedFraction(chosen), Is.EqualTo(0.5).Within(0.02));
    }

    [Test]
    public void Label_smoothing_reaches_the_loss()
    {
        var compile = SingleRun.Compile(Parse("--label-smoothing", "0.3"));
        using var logits = tensor(new float[] { 2f, -1f, 0.5f, 0f, 1f, 3f }, [2, 3]);
        using var target = tensor(new long[] { 0, 2 });
        using var loss = compile.Loss(logits, target);
        // (1 - e) * NLL of the target + e * the mean over classes of -log p, averaged over the batch.
        var logp = logits.log_softmax(1).data<float>().ToArray();
        double expected = 0;
        for (int i = 0; i < 2; i++)
        {
            double nll = -logp[i * 3 + (i == 0 ? 0 : 2)], uniform = -(logp[i * 3] + logp[i * 3 + 1] + logp[i * 3 + 2]) / 3;
            expected += (0.7 * nll + 0.3 * uniform) / 2;
        }
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-5));
    }

    [Test]
    public void Weight_decay_and_the_learning_rate_reach_the_optimizer()
    {
        // A zero gradient leaves Adam's step at 0, so one AdamW step is exactly the decoupled decay: p * (1 - lr * wd).
        var compile = SingleRun.Compile(Parse("--weight-decay", "0.5", "--lr", "0.1"));
        var p = new TorchSharp.Modules.Parameter(tensor(new float[] { 1f, -2f, 4f }));
        using var opt = compile.Optimizer([p]);
        p.mul(0).sum().backward();
        opt.step();
        Assert.That(p.data<float>().ToArray(), Is.EqualTo(new[] { 0.95f, -1.9f, 3.8f }).Within(1e-6));
    }

    /// <summary>A network of one linear layer over 2x2 images, for the loop's own behaviour.</summary>
    sealed class Tiny : nn.Module<Tensor, Tensor>
    {
        readonly TorchSharp.Modules.Linear fc = nn.Linear(12, 2);
        public Tiny() : base("tiny") => RegisterComponents();
        public override Tensor forward(Tensor x) => fc.forward(x.flatten(1));
    }

    static KerasModel TinyModel(TrainOptions o)
    {
        manual_seed(0);
        var m = new KerasModel(new Tiny(), CPU, 2);
        m.Compile(SingleRun.Compile(o));
        return m;
    }

    sealed class LrPerBatch : Callback
    {
        public readonly List<double> Seen = [];
        public override void OnBatchEnd(int batch, Logs logs) => Seen.Add(Model.LearningRate);
    }

    [Test]
    public void Min_lr_reaches_the_epoch_cosine()
    {
        var o = Parse("--lr", "0.01", "--min-lr", "0.001", "--epochs", "4");
        using var model = TinyModel(o);
        var seen = new LrPerBatch();
        model.Fit(new TensorData(randn(4, 3, 2, 2), tensor(new long[] { 0, 1, 0, 1 }), 4), 4, callbacks: [SingleRun.Schedule(o, 1), seen]);
        var expected = Enumerable.Range(0, 4).Select(e => 0.001 + (0.01 - 0.001) * (1 + Math.Cos(Math.PI * e / 4)) / 2);
        Assert.That(seen.Seen, Is.EqualTo(expected).Within(1e-12));
    }

    [Test]
    public void The_step_schedule_changes_the_learning_rate_every_batch()
    {
        var o = Parse("--lr", "0.01", "--min-lr", "0", "--epochs", "2", "--schedule", "step", "--warmup-epochs", "1");
        using var model = TinyModel(o);
        var seen = new LrPerBatch();
        // 8 images in batches of 2: 4 steps per epoch, 8 in all, the first 4 of them warm-up.
        model.Fit(new TensorData(randn(8, 3, 2, 2), tensor(new long[] { 0, 1, 0, 1, 0, 1, 0, 1 }), 2), 2, callbacks: [SingleRun.Schedule(o, 4), seen]);
        Assert.That(seen.Seen, Is.EqualTo(Enumerable.Range(0, 8).Select(s => Schedules.WarmupCosine(0.01, 0, 8, 4)(s))).Within(1e-12));
        Assert.That(seen.Seen[1], Is.Not.EqualTo(seen.Seen[0]), "a new rate within the first epoch");
        Assert.That(seen.Seen[6], Is.Not.EqualTo(seen.Seen[5]), "and within the second");
        Assert.That(seen.Seen[1], Is.EqualTo(0.01 * 2 / 4).Within(1e-12), "linear warm-up");
    }

    [Test]
    public void Early_stopping_waits_while_the_monitored_accuracy_rises_and_stops_when_it_falls()
    {
        static int? StopsAt(string monitor, params double[] values)
        {
            using var model = TinyModel(new TrainOptions());
            var es = new EarlyStopping(monitor, patience: 2) { Model = model };
            es.OnTrainBegin(Logs.Empty);
            for (int e = 0; e < values.Length && !model.StopTraining; e++) es.OnEpochEnd(e, Logs.Empty.With(monitor, values[e]));
            return es.StoppedEpoch;
        }
        Assert.That(StopsAt("val_accuracy", 0.5, 0.6, 0.7, 0.8, 0.9), Is.Null);
        Assert.That(StopsAt("val_accuracy", 0.9, 0.8, 0.7, 0.6), Is.EqualTo(2));
        Assert.That(StopsAt("val_accuracy", 0.5, 0.7, 0.7, 0.7), Is.EqualTo(3), "no gain is no improvement");
        Assert.That(StopsAt("val_loss", 0.9, 0.8, 0.7, 0.6), Is.Null);
        Assert.That(StopsAt("val_loss", 0.5, 0.6, 0.7, 0.8), Is.EqualTo(2));
    }

    [Test]
    public void The_best_checkpoint_is_the_epoch_of_the_highest_val_accuracy_and_a_tie_keeps_the_first()
    {
        var state = TrainerState.Empty;
        var flags = new List<bool>();
        double[] val = [0.5, 0.7, 0.6, 0.7, 0.65];
        for (int e = 0; e < val.Length; e++)
        {
            (state, bool best) = state.After(new HistoryRow(e + 1, 1, 0.9, 1, val[e], null, 1e-3, 2), 10);
            flags.Add(best);
        }
        Assert.That(flags, Is.EqualTo(new[] { true, true, false, false, false }));
        Assert.That((state.BestEpoch, state.BestValAccuracy, state.CompletedEpochs, state.TrainImages, state.TrainSeconds), Is.EqualTo((2, 0.7, 5, 50L, 10.0)));
        Assert.That(state.History!.Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2, 3, 4, 5 }));
        // An epoch trained again (after a kill) replaces its row and every later one.
        var (again, _) = state.After(new HistoryRow(3, 1, 0.9, 1, 0.1, null, 1e-3, 2), 10);
        Assert.That(again.History!.Select(r => r.Epoch), Is.EqualTo(new[] { 1, 2, 3 }));
    }
}
