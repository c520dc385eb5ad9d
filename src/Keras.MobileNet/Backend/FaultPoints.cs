using System.Globalization;
using System.Runtime.InteropServices;

namespace Keras.MobileNet.Backend;

/// <summary>
/// Points at which a test may kill the process (armed by <see cref="Configure"/>: SIGKILL at the N-th point, and/or
/// the number of points reached written to a file at each one). Every rename and delete of the run folder is one.
/// </summary>
public static class FaultPoints
{
    static int count;
    static int? KillAt;
    static string? CountFile;

    /// <summary>Arms the points (the command line reads KM_FAULT_KILL_AT and KM_FAULT_COUNT; nothing else calls this).</summary>
    public static void Configure(int? killAt, string? countFile) => (KillAt, CountFile) = (killAt, countFile);

    [DllImport("libc", EntryPoint = "kill")] static extern int Kill(int pid, int signal);

    public static void Hit()
    {
        if (KillAt is null && CountFile is null) return;
        int n = Interlocked.Increment(ref count);
        if (CountFile is not null) File.WriteAllText(CountFile, n.ToString(CultureInfo.InvariantCulture));
        if (n == KillAt) Kill(Environment.ProcessId, 9);
    }
}
