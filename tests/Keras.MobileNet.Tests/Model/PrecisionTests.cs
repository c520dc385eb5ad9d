namespace Keras.MobileNet.Tests;

/// <summary>bf16 mixed precision and channels-last on the CPU: same network, same keys, fp32 where autocast keeps fp32.</summary>
public sealed class PrecisionTests() : WithTempDir("km-precision-")
{
    static KerasModel Model(Precision p, MemoryFormat f, bool perParameter = false) =>
        TinyModel.Build(classes: 4, seed: 3, precision: p, format: f, weightDecay: 0.01, labelSmoothing: 0.1, perParameter: perParameter);

    static TensorData Data()
    {
        manual_seed(9);
        return new TensorData(randn(16, 3, 32, 32), randint(0, 4, [16]), 8);
    }

    static Dictionary<string, Tensor> State(KerasModel m) => m.Network.state_dict().ToDictionary(e => e.Key, e => e.Value.contiguous());

    [Test]
    public void Layouts_go_to_channels_last_and_back_and_only_four_dimensional_tensors_are_channels_last()
    {
        manual_seed(3);
        using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 4));
        var w = net.named_parameters().First(p => p.name == "features.0.0.weight").parameter; // 8x3x3x3: the two layouts differ
        using var before = w.detach().clone();
        Layouts.Apply(net, Precision.Fp32, MemoryFormat.ChannelsLast);
        Assert.That(Layouts.IsChannelsLast(w) && !w.is_contiguous(), "NHWC strides");
        Layouts.Apply(net, Precision.Fp32, MemoryFormat.ChannelsLast);
        Assert.That(Layouts.IsChannelsLast(w) && !w.is_contiguous(), "applying channels-last again keeps it");
        Layouts.Apply(net, Precision.Fp32, MemoryFormat.Contiguous);
        Assert.That(w.is_contiguous() && !Layouts.IsChannelsLast(w), "back to NCHW strides, the same Parameter");
        Assert.That(w.allclose(before, rtol: 0, atol: 0), "values unchanged by either move");
        using var flat = ones(6, 1);
        using var image = ones(2, 1, 1, 1);
        Assert.That(Layouts.IsChannelsLast(flat), Is.False, "a 2-D tensor has no channels-last layout");
        Assert.That(Layouts.IsChannelsLast(image), Is.True, "dimensions of size 1 may have any stride, as in PyTorch");
        Assert.That(Layouts.Resolve(MemoryFormat.Auto, CPU), Is.EqualTo(MemoryFormat.ChannelsLast), "auto is channels-last on a CPU too (faster at 224)");
        Assert.That(Layouts.Resolve(MemoryFormat.Contiguous, CPU), Is.EqualTo(MemoryFormat.Contiguous));
        Assert.That(Layouts.Resolve(MemoryFormat.ChannelsLast, CPU), Is.EqualTo(MemoryFormat.ChannelsLast));
        Assert.That(Layouts.Resolve(MemoryFormat.Auto, new Device(DeviceType.CUDA)), Is.EqualTo(MemoryFormat.ChannelsLast), "auto is channels-last on CUDA");
    }

    [Test]
    public void Building_blocks_refuse_what_torchvision_refuses()
    {
        Assert.That(() => Factories.Activation(Activation.None), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("linear unit"));
        using var bn = Factories.Norm(4);
        using var flat = ones(2, 4);
        Assert.That(() => bn.forward(flat), Throws.ArgumentException.With.Message.Contains("expected 4D input, but got 2D"));
    }

    [Test]
    public void Channels_last_trains_the_same_network_as_contiguous()
    {
        using var a = Model(Precision.Fp32, MemoryFormat.Contiguous);
        using var b = Model(Precision.Fp32, MemoryFormat.ChannelsLast);
        Assert.That(b.MemoryFormat, Is.EqualTo(MemoryFormat.ChannelsLast));
        var convWeight = b.Network.named_parameters().First(p => p.name == "features.1.conv.0.0.weight").parameter;
        Assert.That(Layouts.IsChannelsLast(convWeight), "conv weights have NHWC strides");
        // One step's gradients are the same function of the weights in both layouts: checked in fp64, where rounding
        // does not hide it (in fp32 a freshly initialised network in train mode, BatchNorm over small maps, is so
        // ill-conditioned that contiguous fp32 itself can differ from fp64 by more than 100%, in either layout).
        using (var x = randn(8, 3, 64, 64, dtype: ScalarType.Float64))
        using (var y = randint(0, 4, [8]))
        {
            Tensor Gradient(MemoryFormat f)
            {
                manual_seed(3);
                using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 4));
                net.to(ScalarType.Float64);
                Layouts.Apply(net, Precision.Fp32, f);
                net.train();
                manual_seed(1); // the same dropout mask
                Losses.CrossEntropy(0.1)(net.forward(f == MemoryFormat.ChannelsLast ? Layouts.ChannelsLast(x) : x), y).backward();
                var g = net.named_parameters().First(p => p.name == "features.0.0.weight").parameter.grad!;
                Assert.That(Layouts.IsChannelsLast(g), Is.EqualTo(f == MemoryFormat.ChannelsLast), "gradients come back in the weight's layout");
                return torch.cat(net.parameters().Select(p => p.grad!.flatten()).ToList(), 0);
            }
            using var contiguous = Gradient(MemoryFormat.Contiguous);
            using var channelsLast = Gradient(MemoryFormat.ChannelsLast);
            Assert.That((channelsLast - contiguous).abs().max().item<double>() / contiguous.abs().max().item<double>(), Is.LessThan(1e-10));
        }
        // Inference agrees in fp32 too, and Fit trains through the multi-tensor AdamW's channels-last views.
        using (var x = randn(4, 3, 32, 32))
        using (var la = a.Predict(x))
        using (var lb = b.Predict(x))
            Assert.That((la - lb).abs().max().item<float>(), Is.LessThan(1e-4f));
        var h = b.Fit(Data(), 3);
        Assert.That(h.Epochs[^1].Logs["loss"], Is.LessThan(h.Epochs[0].Logs["loss"]), "it trains");
        Assert.That(Layouts.IsChannelsLast(convWeight), "still channels-last after the optimizer's steps");
        // Its optimizer state file is TorchSharp's (dense NCHW moments): a contiguous run and a channels-last run read it.
        string opt = Path.Combine(dir, "cl.optimizer.bin");
        Checkpoints.SaveOptimizer(b.Optimizer!, opt);
        using var readContiguous = Model(Precision.Fp32, MemoryFormat.Contiguous, perParameter: true);
        Checkpoints.LoadOptimizer(readContiguous.Optimizer!, opt);
        using var readChannelsLast = Model(Precision.Fp32, MemoryFormat.ChannelsLast);
        Checkpoints.LoadOptimizer(readChannelsLast.Optimizer!, opt);
        foreach (var reader in new[] { readContiguous, readChannelsLast })
            Assert.That(((TorchSharp.Modules.OptimizerHelper)reader.Optimizer!).state_dict().State.Zip(((TorchSharp.Modules.OptimizerHelper)b.Optimizer!).state_dict().State).All(p => p.First.ApproximatelyEquals(p.Second)),
                "moments and steps read back, element by element");
        Checkpoints.Save(b.Network, Path.Combine(dir, "cl.safetensors"));
        using var c = Model(Precision.Fp32, MemoryFormat.Contiguous);
        Checkpoints.Load(c.Network, Path.Combine(dir, "cl.safetensors"));
        Assert.That((State(c)["features.1.conv.0.0.weight"] - State(b)["features.1.conv.0.0.weight"]).abs().max().item<float>(), Is.Zero,
            "the file holds the values, whatever the layout in memory");
        using var auto = Model(Precision.Fp32, MemoryFormat.Auto);
        Assert.That(auto.MemoryFormat, Is.EqualTo(MemoryFormat.ChannelsLast), "auto is channels-last on the CPU too");
    }

    [Test]
    public void Bf16_computes_convolutions_in_bf16_and_keeps_weights_statistics_logits_and_checkpoints_fp32()
    {
        using var a = Model(Precision.Fp32, MemoryFormat.Contiguous);
        using var b = Model(Precision.Bf16, MemoryFormat.Contiguous);
        using var x = randn(4, 3, 32, 32);
        using var la = a.Predict(x);
        using var lb = b.Predict(x);
        Assert.That(lb.dtype, Is.EqualTo(ScalarType.Float32), "logits, and so the loss, in fp32");
        Assert.That((la - lb).abs().max().item<float>(), Is.GreaterThan(0f), "the convolutions did run in bf16");
        Assert.That((la - lb).abs().max().item<float>(), Is.LessThan(0.05f * Math.Max(1f, la.abs().max().item<float>())));
        var h = b.Fit(Data(), 3);
        Assert.That(h.Epochs[^1].Logs["loss"], Is.LessThan(h.Epochs[0].Logs["loss"]), "it trains");
        foreach (var (k, t) in b.Network.state_dict())
            if (t.is_floating_point()) Assert.That(t.dtype, Is.EqualTo(ScalarType.Float32), $"{k}: master weights and BatchNorm statistics stay fp32");
        Checkpoints.Save(b.Network, Path.Combine(dir, "bf16.safetensors"));
        using var c = Model(Precision.Fp32, MemoryFormat.Contiguous);
        Checkpoints.Load(c.Network, Path.Combine(dir, "bf16.safetensors"));
    }
}
