using Keras.MobileNet.Backend;
using Keras.MobileNet.Engine;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Training;

/// <summary>
/// Where a request to stop a run comes from (the command line listens for SIGTERM and SIGINT): the request's name, or
/// null. Listened to from the start of Fit to its end, then disposed.
/// </summary>
public interface IStopSource : IDisposable
{
    string? Requested { get; }
}

/// <summary>
/// What the caller adds around a run's Fit, all optional: a progress callback (made from the epoch count and the
/// batches per epoch), a stop source listened to during Fit, and a sleep after each batch (a test aid).
/// </summary>
public sealed record RunHooks(Func<int, int, Callback>? Progress = null, Func<IStopSource>? Stop = null, int ThrottleMs = 0)
{
    public static readonly RunHooks None = new();
}

/// <summary>The run was stopped by a signal; its folder holds every committed epoch.</summary>
public sealed class RunInterrupted(string signal, string folder, int committedEpochs)
    : UserError($"stopped by {signal}: {folder} keeps {committedEpochs switch { 0 => "no completed epoch", 1 => "epoch 1", _ => $"epochs 1-{committedEpochs}" }}; " +
                "the same command resumes it", signal == "SIGTERM" ? 143 : 130);

/// <summary>Ends Fit when a stop signal has arrived: after a batch, or after an epoch's commit (so it is kept).</summary>
public sealed class StopOnSignal(IStopSource signals, string folder, Func<int> committedEpochs) : Callback
{
    void Check()
    {
        if (signals.Requested is string s) throw new RunInterrupted(s, folder, committedEpochs());
    }

    public override void OnBatchEnd(int batch, Logs logs) => Check();
    public override void OnEpochEnd(int epoch, Logs logs) => Check();
}
