using System.Runtime.InteropServices;
using Keras.MobileNet.Backend;

using Keras.MobileNet.Training;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Cli;

/// <summary>
/// SIGTERM (what Slurm and Kubernetes send before a time limit, a preemption or a requeue) and SIGINT (Ctrl-C)
/// during training: the run stops at the next batch boundary, after the epoch commit if one is under way, and the
/// process exits with 128 + the signal's number. The run folder then holds every committed epoch, and the same
/// command resumes it. Outside training a signal keeps its default effect; a second one ends the process at once.
/// </summary>
public sealed class StopSignals : IStopSource
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
