namespace Keras.MobileNet.Tests;

/// <summary>Evaluation and prediction through ONNX Runtime (the network exported in memory) against libtorch.</summary>
public class OrtForwardTests
{
    /// <summary>A paper MobileNetV2 with BatchNorm statistics of its own (so folding them matters), and a fixed val set
    /// of non-square images (so a swapped height and width shows).</summary>
    static (KerasModel Model, TensorData Val) Setup(int images = 24)
    {
        var model = Applications.MobileNetV2(width: 0.35, classes: 10, seed: 3);
        TinyModel.RandomStatistics(model.Network, seed: 4);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, 0), Losses.CrossEntropy(0.1)));
        return (model, new TensorData(randn(images, 3, 64, 48), randint(0, 10, [images]), 8));
    }

    [Test]
    public void Onnx_Runtime_evaluation_equals_libtorchs_within_1e_4_with_the_same_accuracy_and_confusion()
    {
        var (model, val) = Setup();
        using var _ = model;
        model.InferenceEngine = InferenceEngine.Torch;
        var torch = model.Evaluate(val);
        model.InferenceEngine = InferenceEngine.OnnxRuntime;
        var ort = model.Evaluate(val);
        Assert.That(ort.Loss, Is.EqualTo(torch.Loss).Within(1e-4), "the compiled loss (label smoothing 0.1) of the same logits");
        Assert.That((ort.Accuracy, ort.TopK, ort.Samples), Is.EqualTo((torch.Accuracy, torch.TopK, torch.Samples)));
        Assert.That(ort.Confusion, Is.EqualTo(torch.Confusion));

        using var x = randn(5, 3, 40, 56);
        model.InferenceEngine = InferenceEngine.Torch;
        using var t = model.Predict(x);
        model.InferenceEngine = InferenceEngine.OnnxRuntime;
        using var o = model.Predict(x);
        Assert.That(o.shape, Is.EqualTo(new long[] { 5, 10 }));
        Assert.That((o - t).abs().max().item<float>(), Is.LessThan(1e-4f));
    }

    [Test]
    public void Auto_is_Onnx_Runtime_on_a_CPU_for_a_model_with_a_card_and_libtorch_otherwise()
    {
        var (model, val) = Setup(8);
        using var _ = model;
        Assert.That(model.EngineInUse, Is.EqualTo(InferenceEngine.OnnxRuntime));
        model.InferenceEngine = InferenceEngine.Torch;
        Assert.That(model.EngineInUse, Is.EqualTo(InferenceEngine.Torch));
        using var tiny = TinyModel.Build(); // a network of its own: no card to export it from
        Assert.That(tiny.EngineInUse, Is.EqualTo(InferenceEngine.Torch));
        tiny.InferenceEngine = InferenceEngine.OnnxRuntime;
        Assert.That(() => tiny.EngineInUse, Throws.InvalidOperationException.With.Message.Contains("Card"));
    }

    [Test]
    public void Fit_validates_each_epoch_with_the_weights_of_that_epoch()
    {
        var (model, val) = Setup(16);
        using var _ = model;
        var history = model.Fit(val, 2, validation: val);
        double lastValLoss = history.Epochs[^1].Logs["val_loss"];
        model.InferenceEngine = InferenceEngine.Torch;
        Assert.That(model.Evaluate(val).Loss, Is.EqualTo(lastValLoss).Within(1e-4), "ONNX Runtime saw the trained weights, not the first ones");
        Assert.That(history.Epochs[0].Logs["val_loss"], Is.Not.EqualTo(lastValLoss).Within(1e-6));
    }
}
