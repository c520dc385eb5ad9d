using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Engine;

/// <summary>Learning-rate schedules as pure functions; a thin callback applies them.</summary>
public static class Schedules
{
    /// <summary>
    /// PyTorch CosineAnnealingLR's closed form, stepped once per epoch:
    /// lr(e) = eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2.
    /// </summary>
    public static Func<int, double> CosineAnnealing(double baseLr, double etaMin, int tMax)
    {
        if (tMax < 1) throw new ArgumentException("T_max must be at least 1");
        return epoch => etaMin + (baseLr - etaMin) * (1 + Math.Cos(Math.PI * epoch / tMax)) / 2;
    }

    /// <summary>Per-step variant: linear warm-up over <paramref name="warmupSteps"/>, then cosine to eta_min at the last step.</summary>
    public static Func<long, double> WarmupCosine(double baseLr, double etaMin, long totalSteps, long warmupSteps)
    {
        if (totalSteps < 1 || warmupSteps < 0 || warmupSteps >= totalSteps) throw new ArgumentException("need 0 <= warm-up steps < total steps");
        return step =>
        {
            if (step < warmupSteps) return baseLr * (step + 1) / warmupSteps;
            double t = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
            return etaMin + (baseLr - etaMin) * (1 + Math.Cos(Math.PI * Math.Min(1.0, t))) / 2;
        };
    }

    /// <summary>
    /// Fine-tuning's two phases, each with its own cosine: epochs before <paramref name="unfreezeEpoch"/> from
    /// <paramref name="headLr"/>, the rest from <paramref name="fineTuneLr"/>, both down towards <paramref name="etaMin"/>.
    /// </summary>
    public static Func<int, double> TwoPhaseCosine(double headLr, double fineTuneLr, double etaMin, int unfreezeEpoch, int epochs)
    {
        var phase2 = CosineAnnealing(fineTuneLr, etaMin, epochs - unfreezeEpoch);
        if (unfreezeEpoch == 0) return phase2;
        var phase1 = CosineAnnealing(headLr, etaMin, unfreezeEpoch);
        return epoch => epoch < unfreezeEpoch ? phase1(epoch) : phase2(epoch - unfreezeEpoch);
    }
}
