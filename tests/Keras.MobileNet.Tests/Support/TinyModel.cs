namespace Keras.MobileNet.Tests;

/// <summary>The suite's one small compiled network: the paper preset at width 0.25, seeded, AdamW and cross-entropy.</summary>
static class TinyModel
{
    public static KerasModel Build(int classes = 2, long seed = 0, Precision precision = Precision.Fp32, MemoryFormat format = MemoryFormat.Auto,
        double weightDecay = 0, double labelSmoothing = 0, bool perParameter = false)
    {
        manual_seed(seed);
        var model = new KerasModel(Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, classes)), CPU, classes, precision, format);
        model.Compile(new CompileOptions(Optimizers.AdamW(1e-3, weightDecay, perParameter: perParameter), Losses.CrossEntropy(labelSmoothing)));
        return model;
    }

    /// <summary>
    /// Gives every BatchNorm running mean and variance values of their own, drawn from <paramref name="seed"/> (a fresh
    /// network's 0 and 1 would make folding them into the convolutions a no-op).
    /// </summary>
    public static void RandomStatistics(nn.Module network, long seed)
    {
        manual_seed(seed);
        using var _ = no_grad();
        foreach (var (name, buffer) in network.named_buffers())
            if (name.EndsWith("running_mean")) buffer.copy_(randn(buffer.shape) * 0.2);
            else if (name.EndsWith("running_var")) buffer.copy_(rand(buffer.shape) + 0.5);
    }
}
