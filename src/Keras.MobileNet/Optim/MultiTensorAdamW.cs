using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Optim;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Optim;

/// <summary>
/// AdamW over one buffer: every parameter, its gradient and its two moments are views into four flat tensors, so a step
/// is eight kernels over the whole network instead of about nine per parameter tensor (1,400 launches for
/// MobileNetV2's 158), and zeroing the gradients is one. The math is PyTorch's AdamW (decoupled weight decay
/// <c>p *= 1 - lr * wd</c>, bias corrections, eps added to <c>sqrt(v) / sqrt(1 - beta2^t)</c>), in the order TorchSharp's
/// per-parameter AdamW applies it.
/// <para>
/// It is a TorchSharp <c>AdamW</c> with the same per-parameter state objects (their tensors are views too), and its
/// type name is <c>AdamW</c>, so <c>save_state_dict</c> writes TorchSharp's format: optimizer files of earlier runs
/// resume here and the other way round. Parameters keep their layout (any dense strides, channels-last included):
/// each view has the parameter's own strides. Loading weights in place (<c>copy_</c>, as every loader of this project
/// does) keeps them in the buffer; a parameter that was replaced or moved is a clear error at the next step.
/// </para>
/// <para>
/// While some parameters are frozen (<c>requires_grad</c> false, fine-tuning) or their step counts differ (after an
/// unfreeze), the step runs per parameter over the trainable ones only, as PyTorch skips parameters without a
/// gradient. Each Scalar is made once and disposed explicitly (TorchSharp's own AdamW passes temporaries that the GC
/// may finalize while libtorch still reads them).
/// </para>
/// </summary>
public sealed class AdamW : TorchSharp.Modules.AdamW, IOptimizerState
{
    readonly Parameter[] owned;
    readonly State[] states;
    readonly long[] offsets;
    readonly Tensor flatParams, flatGrads, flatExpAvg, flatExpAvgSq;
    readonly double beta1, beta2, eps, weightDecay;
    readonly IntPtr bufferStorage;

    /// <summary>How the last step ran: true = the whole buffer at once, false = per parameter.</summary>
    public bool LastStepFused { get; private set; }

    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
        : base(parameters, lr, beta1, beta2, eps, weightDecay)
    {
        (this.beta1, this.beta2, this.eps, this.weightDecay) = (beta1, beta2, eps, weightDecay);
        owned = _parameter_groups.SelectMany(g => g.Parameters).ToArray();
        if (owned.Length == 0) throw new ArgumentException("AdamW needs at least one parameter");
        var first = owned[0];
        if (owned.Any(p => p.dtype != first.dtype || !SameDevice(p, first)))
            throw new ArgumentException("the multi-tensor AdamW keeps one buffer: every parameter must have one dtype and one device");
        states = owned.Select(p => (State)_state[p.Handle]).ToArray();
        offsets = new long[owned.Length];
        long total = 0;
        for (int i = 0; i < offsets.Length; i++) { offsets[i] = total; total += this.owned[i].numel(); }
        flatParams = empty(total, first.dtype, first.device);
        flatGrads = zeros(total, first.dtype, first.device);
        flatExpAvg = zeros(total, first.dtype, first.device);
        flatExpAvgSq = zeros(total, first.dtype, first.device);
        bufferStorage = StorageOf(flatParams);
        using var _ = no_grad();
        for (int i = 0; i < owned.Length; i++)
        {
            var p = this.owned[i];
            using (var view = View(flatParams, i))
            {
                view.copy_(p);
                p.set_(view);
            }
            using (var g = View(flatGrads, i)) p.grad = g;
            states[i].exp_avg.Dispose();
            states[i].exp_avg_sq.Dispose();
            states[i].exp_avg = View(flatExpAvg, i);
            states[i].exp_avg_sq = View(flatExpAvgSq, i);
        }
    }

    /// <summary>Where a tensor's storage begins (identity of the buffer); fp32 and fp64 parameters, else zero (not checked).</summary>
    static IntPtr StorageOf(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => t.storage<float>().data_ptr(),
        ScalarType.Float64 => t.storage<double>().data_ptr(),
        _ => IntPtr.Zero,
    };

    static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    /// <summary>Parameter i's place in a flat buffer, with the parameter's own shape and strides.</summary>
    Tensor View(Tensor flat, int i) => flat.as_strided(owned[i].shape, owned[i].stride(), offsets[i]);

    public override void zero_grad()
    {
        CheckInBuffer();
        flatGrads.zero_();
    }

    void CheckInBuffer()
    {
        for (int i = 0; i < owned.Length; i++)
            if (owned[i].storage_offset() != offsets[i] || !SameDevice(owned[i], flatParams) || StorageOf(owned[i]) != bufferStorage)
                throw new InvalidOperationException($"parameter {i} {string.Join('x', owned[i].shape)} no longer lives in the optimizer's buffer " +
                                                    "(replaced or moved after Compile; load weights with copy_ and move the network before Compile)");
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        if (closure is not null) throw new NotSupportedException("the multi-tensor AdamW takes no closure");
        CheckInBuffer();
        double lr = ParamGroups.First().LearningRate;
        long t = states[0].step;
        LastStepFused = owned.All(p => p.requires_grad) && states.All(s => s.step == t);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        if (LastStepFused)
        {
            foreach (var s in states) s.step = t + 1;
            Update(flatParams, flatGrads, flatExpAvg, flatExpAvgSq, lr, t + 1);
        }
        else
            for (int i = 0; i < owned.Length; i++)
            {
                if (!owned[i].requires_grad) continue; // no gradient: PyTorch skips the parameter (no step, no decay)
                var s = states[i];
                s.step += 1;
                using var g = View(flatGrads, i);
                Update(owned[i], g, s.exp_avg, s.exp_avg_sq, lr, s.step);
            }
        return null!;
    }

    /// <summary>One AdamW update of p (in place) from gradient g and moments m, v after <paramref name="step"/> steps.</summary>
    void Update(Tensor p, Tensor g, Tensor m, Tensor v, double lr, long step)
    {
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        using Scalar decay = 1 - lr * weightDecay, b1 = beta1, oneMinusB1 = 1 - beta1, b2 = beta2, oneMinusB2 = 1 - beta2,
            sqrtBc2 = Math.Sqrt(bc2), epsilon = eps, stepSize = -lr / bc1;
        if (weightDecay != 0) p.mul_(decay); // x * 1 is x: skipping it changes no bit
        m.mul_(b1).add_(g, oneMinusB1);
        v.mul_(b2).addcmul_(g, g, oneMinusB2);
        using var denom = v.sqrt();
        denom.div_(sqrtBc2).add_(epsilon);
        p.addcdiv_(m, denom, stepSize);
    }

    /// <summary>
    /// Runs a save or load of the state file with the moments as dense NCHW tensors (TorchSharp's file format writes and
    /// reads raw bytes, which channels-last views do not have in NCHW order), then puts the values back into the buffer.
    /// </summary>
    void WithDenseState(Action io)
    {
        var views = states.Select(s => (s.exp_avg, s.exp_avg_sq)).ToArray();
        for (int i = 0; i < states.Length; i++)
            if (!views[i].exp_avg.is_contiguous())
                (states[i].exp_avg, states[i].exp_avg_sq) = (views[i].exp_avg.contiguous(), views[i].exp_avg_sq.contiguous());
        try { io(); }
        finally
        {
            using var _ = no_grad();
            for (int i = 0; i < states.Length; i++)
            {
                if (ReferenceEquals(states[i].exp_avg, views[i].exp_avg)) continue;
                views[i].exp_avg.copy_(states[i].exp_avg);
                views[i].exp_avg_sq.copy_(states[i].exp_avg_sq);
                states[i].exp_avg.Dispose();
                states[i].exp_avg_sq.Dispose();
                (states[i].exp_avg, states[i].exp_avg_sq) = views[i];
            }
        }
    }

    /// <summary>Writes the state in TorchSharp's AdamW format (what <c>save_state_dict</c> writes for contiguous parameters).</summary>
    public void SaveState(string path) => WithDenseState(() => save_state_dict(path));

    /// <summary>Reads a state file of TorchSharp's AdamW format into the buffer.</summary>
    public void LoadState(string path) => WithDenseState(() => load_state_dict(path));

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing); // the states' tensors, views of the buffers
        if (disposing) foreach (var t in new[] { flatParams, flatGrads, flatExpAvg, flatExpAvgSq }) t.Dispose();
    }
}
