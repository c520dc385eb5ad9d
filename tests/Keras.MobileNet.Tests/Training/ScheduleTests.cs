using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

public class ScheduleTests
{
    [Test]
    public void Cosine_equals_pytorch_CosineAnnealingLR_first_middle_last()
    {
        var lr = Schedules.CosineAnnealing(1e-3, 1e-5, 100);
        Assert.That(lr(0), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(lr(50), Is.EqualTo((1e-3 + 1e-5) / 2).Within(1e-15));
        Assert.That(lr(99), Is.EqualTo(1e-5 + (1e-3 - 1e-5) * (1 + Math.Cos(Math.PI * 99 / 100)) / 2).Within(1e-15));
        Assert.That(lr(99), Is.EqualTo(1.02443e-5).Within(1e-9));
        Assert.That(lr(100), Is.EqualTo(1e-5).Within(1e-15));
        // PyTorch steps the scheduler with its recursive (chainable) form; the closed form must agree at every epoch.
        double prev = 1e-3;
        for (int t = 1; t < 100; t++)
        {
            double next = (1 + Math.Cos(Math.PI * t / 100)) / (1 + Math.Cos(Math.PI * (t - 1) / 100)) * (prev - 1e-5) + 1e-5;
            Assert.That(lr(t), Is.EqualTo(next).Within(1e-12), $"epoch {t}");
            prev = next;
        }
    }

    [Test]
    public void Warmup_cosine_rises_linearly_then_decays_to_the_floor()
    {
        var lr = Schedules.WarmupCosine(1e-3, 1e-5, 1000, 100);
        Assert.That(lr(0), Is.EqualTo(1e-5).Within(1e-15));
        Assert.That(lr(49), Is.EqualTo(5e-4).Within(1e-15));
        Assert.That(lr(100), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(lr(550), Is.EqualTo((1e-3 + 1e-5) / 2).Within(1e-12));
        Assert.That(lr(1000), Is.EqualTo(1e-5).Within(1e-15));
        Assert.That(lr(1500), Is.EqualTo(1e-5).Within(1e-15), "past the last step it stays at the floor");
        var noWarmup = Schedules.WarmupCosine(1e-3, 0, 10, 0);
        Assert.That(noWarmup(0), Is.EqualTo(1e-3), "no warm-up starts at the base rate");
        Assert.That(noWarmup(5), Is.EqualTo(5e-4).Within(1e-15));
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 0, 0), Throws.ArgumentException);
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 10, -1), Throws.ArgumentException);
        Assert.That(Schedules.WarmupCosine(1e-3, 0, 1, 0)(0), Is.EqualTo(1e-3), "one step, no warm-up, is allowed");
        Assert.That(() => Schedules.WarmupCosine(1e-3, 0, 10, 10), Throws.ArgumentException);
        Assert.That(() => Schedules.CosineAnnealing(1e-3, 0, 0), Throws.ArgumentException.With.Message.Contains("T_max must be at least 1"));
        Assert.That(Schedules.CosineAnnealing(1e-3, 0, 1)(1), Is.EqualTo(0).Within(1e-18), "one epoch of cosine is allowed");
    }
}
