using System.Diagnostics;

namespace Keras.MobileNet.Tests;

/// <summary>Runs the Train program as a user would: a separate process, its exit code, stdout and stderr.</summary>
static class Cli
{
    public sealed record Result(int ExitCode, string Out, string Err);

    public static string TrainDll => Path.Combine(TestContext.CurrentContext.TestDirectory, "Train.dll");

    public static ProcessStartInfo Start(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["KM_CRASH_TO_STDERR"] = "1"; // an internal error shows its stack trace in the test's message
        psi.ArgumentList.Add(TrainDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Like <see cref="Start"/>, each training batch followed by a sleep (KM_THROTTLE_MS): a wider window to interrupt.</summary>
    public static ProcessStartInfo Throttled(int ms, string workDir, params string[] args)
    {
        var psi = Start(workDir, args);
        psi.Environment["KM_THROTTLE_MS"] = ms.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return psi;
    }

    public static Result Run(string workDir, params string[] args)
    {
        using var p = Process.Start(Start(workDir, args))!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(600_000)) { p.Kill(true); Assert.Fail("Train did not finish in 10 minutes"); }
        return new Result(p.ExitCode, output, err.Result);
    }
}
