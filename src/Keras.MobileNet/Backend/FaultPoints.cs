using System.Globalization;
using System.Runtime.InteropServices;

namespace Keras.MobileNet.Backend;

/// <summary>
/// Points at which a test may kill the process (KM_FAULT_KILL_AT=N: SIGKILL at the N-th point; KM_FAULT_COUNT=FILE:
/// the number of points reached is written there at each one). Every rename and delete of the run folder is one.
/// </summary>
public static class FaultPoints
{
    static int count;
    static readonly int? KillAt = int.TryParse(Environment.GetEnvironmentVariable("KM_FAULT_KILL_AT"), out var k) ? k : null;
    static readonly string? CountFile = Environment.GetEnvironmentVariable("KM_FAULT_COUNT");

    [DllImport("libc", EntryPoint = "kill")] static extern int Kill(int pid, int signal);

    public static void Hit()
    {
        if (KillAt is null && CountFile is null) return;
        int n = Interlocked.Increment(ref count);
        if (CountFile is not null) File.WriteAllText(CountFile, n.ToString(CultureInfo.InvariantCulture));
        if (n == KillAt) Kill(Environment.ProcessId, 9);
    }
}

/// <summary>Test aids read from the environment, never options: KM_THROTTLE_MS=N sleeps N ms after each training batch.</summary>
public static class TestHooks
{
    public static int ThrottleMs { get; } = int.TryParse(Environment.GetEnvironmentVariable("KM_THROTTLE_MS"), out var ms) && ms > 0 ? ms : 0;
}
