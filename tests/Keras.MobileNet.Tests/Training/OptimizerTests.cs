namespace Keras.MobileNet.Tests;

/// <summary>The multi-tensor AdamW against TorchSharp's per-parameter AdamW, which follows PyTorch's.</summary>
public sealed class OptimizerTests() : WithTempDir("km-optim-")
{
    static Model.MobileNetV2 Net()
    {
        manual_seed(11);
        return Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 4));
    }

    /// <summary>Ten train steps with the given optimizer (lr changed mid-way, as a schedule does); the network after them.</summary>
    static Model.MobileNetV2 Train(Func<IEnumerable<TorchSharp.Modules.Parameter>, optim.Optimizer> make, Action<Model.MobileNetV2>? freeze = null)
    {
        var net = Net();
        freeze?.Invoke(net);
        using var opt = make(net.parameters());
        var gen = manual_seed(5);
        var loss = Losses.CrossEntropy(0.1);
        net.train();
        for (int step = 0; step < 10; step++)
        {
            using var scope = NewDisposeScope();
            using var x = randn(4, 3, 32, 32);
            using var y = randint(0, 4, [4]);
            opt.zero_grad();
            loss(net.forward(x), y).backward();
            if (step == 5) foreach (var g in opt.ParamGroups) g.LearningRate = 3e-4;
            opt.step();
        }
        return net;
    }

    static void AssertClose(Model.MobileNetV2 a, Model.MobileNetV2 b, double rtol)
    {
        var sb = b.state_dict();
        foreach (var (k, t) in a.state_dict())
        {
            if (!t.is_floating_point()) continue;
            double scale = Math.Max(t.abs().max().item<float>(), 1e-12);
            double diff = (t - sb[k]).abs().max().item<float>();
            Assert.That(diff / scale, Is.LessThanOrEqualTo(rtol), k);
        }
    }

    [Test]
    public void Ten_steps_equal_TorchSharp_AdamW_to_1e_6_relative_with_and_without_weight_decay()
    {
        foreach (double wd in new[] { 0.0, 0.05 })
        {
            using var reference = Train(Optimizers.AdamW(1e-3, wd, perParameter: true));
            using var multi = Train(Optimizers.AdamW(1e-3, wd));
            AssertClose(multi, reference, 1e-6);
            using var start = Net();
            Assert.That((multi.parameters().First() - start.parameters().First()).abs().max().item<float>(), Is.GreaterThan(1e-4f), "the steps trained");
        }
    }

    static void Freeze(Model.MobileNetV2 n)
    {
        foreach (var (name, p) in n.named_parameters())
            if (name.StartsWith("features.")) p.requires_grad = false;
    }

    [Test]
    public void The_step_is_one_buffer_and_frozen_parameters_are_skipped_as_PyTorch_skips_them()
    {
        var net = Net();
        using var opt = new Optim.AdamW(net.parameters(), weightDecay: 0.1);
        using (var x = randn(2, 3, 32, 32)) Losses.CrossEntropy(0)(net.forward(x), tensor(new long[] { 0, 1 })).backward();
        opt.step();
        Assert.That(opt.LastStepFused, Is.True);

        // Frozen features (fine-tuning phase 1): the per-parameter path, over the classifier only.
        using var frozen = Train(Optimizers.AdamW(1e-3, 0.05), Freeze);
        using var frozenRef = Train(Optimizers.AdamW(1e-3, 0.05, perParameter: true), Freeze);
        AssertClose(frozen, frozenRef, 1e-6);
        using var untouched = Net();
        Assert.That((frozen.parameters().First() - untouched.parameters().First()).abs().max().item<float>(), Is.Zero,
            "a frozen parameter keeps its value: no weight decay, no moment");
    }

    [Test]
    public void Its_state_file_is_TorchSharp_AdamW_s_both_ways_and_resumes_the_same_steps()
    {
        string file = Path.Combine(dir, "adamw.bin");
        var net = Net();
        var opt = new Optim.AdamW(net.parameters(), weightDecay: 0.05);
        using (var x = randn(2, 3, 32, 32)) Losses.CrossEntropy(0)(net.forward(x), tensor(new long[] { 0, 1 })).backward();
        opt.step();
        opt.save_state_dict(file);

        var other = Net();
        using var stock = optim.AdamW(other.parameters(), weight_decay: 0.05);
        stock.load_state_dict(file); // the per-parameter AdamW reads it
        var again = Net();
        using var multi = new Optim.AdamW(again.parameters(), weightDecay: 0.05);
        multi.load_state_dict(file); // and the multi-tensor one reads it into its buffer
        Assert.That(stock.state_dict().State.Zip(opt.state_dict().State).All(p => p.First.ApproximatelyEquals(p.Second)));
        Assert.That(multi.state_dict().State.Zip(opt.state_dict().State).All(p => p.First.ApproximatelyEquals(p.Second)));
        opt.Dispose();
    }

    [Test]
    public void A_parameter_replaced_after_Compile_is_a_clear_error_not_a_silent_no_op()
    {
        var net = Net();
        using var opt = new Optim.AdamW(net.parameters());
        using (no_grad()) net.parameters().First().set_(zeros_like(net.parameters().First()));
        Assert.That(() => opt.zero_grad(), Throws.InvalidOperationException.With.Message.Contains("no longer lives in the optimizer's buffer"));
    }
}
