using System.Runtime;

namespace Keras.MobileNet.Backend;

/// <summary>
/// No garbage collection during a training epoch, where the allocations allow it (a no-GC region of 192 MB; a run that
/// allocates more, such as streaming mode's decoding, leaves it and collects as usual).
/// Why: TorchSharp passes temporary Scalars (the 1 of <c>add_(x, 1)</c>, the optimizer's coefficients) to libtorch by
/// handle without keeping them alive, so a collection started by another thread during such a call can finalize
/// (free) one while libtorch reads it. CI saw "Expected false to be true" from c10::Scalar::toLong in
/// BatchNorm.forward and "Unknown scalar type". BatchNorm, the most frequent case, no longer uses a temporary
/// (Model/BatchNorm.cs); this closes the window for the others. Entering may cost one collection per epoch.
/// </summary>
public static class QuietGc
{
    public const long Budget = 192L << 20;

    /// <summary>Starts a no-GC region; false where the runtime refuses (budget too large for it, or one is open).</summary>
    public static bool Enter()
    {
        if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) return false;
        try { return GC.TryStartNoGCRegion(Budget); }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidOperationException) { return false; }
    }

    /// <summary>Ends the region if it is still open (a run that allocated past the budget has left it already).</summary>
    public static void Exit()
    {
        if (GCSettings.LatencyMode != GCLatencyMode.NoGCRegion) return;
        try { GC.EndNoGCRegion(); }
        catch (InvalidOperationException) { }
    }
}
