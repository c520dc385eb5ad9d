using System.Runtime.InteropServices;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Training;

/// <summary>
/// SIGTERM (what Slurm and Kubernetes send before a time limit, a preemption or a requeue) and SIGINT (Ctrl-C)
/// during training: the run stops at the next batch boundary, after the epoch commit if one is under way, and the
/// process exits with 128 + the signal's number. The run folder then holds every committed epoch, and the same
/// command resumes it. Outside training a signal keeps its default effect; a second one ends the process at once.
/// </summary>
public sealed class StopSignals : IDisposable
{
    readonly PosixSignalRegistration[] registrations;
    volatile string? requested;
    int received;

    StopSignals() => registrations = [PosixSignalRegistration.Create(PosixSignal.SIGTERM, On), PosixSignalRegistration.Create(PosixSignal.SIGINT, On)];

    /// <summary>Listens for the process's stop signals until disposed.</summary>
    public static StopSignals Listen() => new();

    /// <summary>The signal received (SIGTERM or SIGINT), or null.</summary>
    public string? Requested => requested;

    void On(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref received) > 1) return; // the second signal: default handling, the process ends
        context.Cancel = true;
        requested = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "SIGINT";
    }

    public void Dispose() { foreach (var r in registrations) r.Dispose(); }
}

/// <summary>The run was stopped by a signal; its folder holds every committed epoch.</summary>
public sealed class RunInterrupted(string signal, string folder, int committedEpochs)
    : UserError($"stopped by {signal}: {folder} keeps {committedEpochs switch { 0 => "no completed epoch", 1 => "epoch 1", _ => $"epochs 1-{committedEpochs}" }}; " +
                "the same command resumes it", signal == "SIGTERM" ? 143 : 130);

/// <summary>Ends Fit when a stop signal has arrived: after a batch, or after an epoch's commit (so it is kept).</summary>
public sealed class StopOnSignal(StopSignals signals, string folder, Func<int> committedEpochs) : Callback
{
    void Check()
    {
        if (signals.Requested is string s) throw new RunInterrupted(s, folder, committedEpochs());
    }

    public override void OnBatchEnd(int batch, Logs logs) => Check();
    public override void OnEpochEnd(int epoch, Logs logs) => Check();
}
