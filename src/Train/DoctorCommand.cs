using System.CommandLine;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Cli;

/// <summary>What the program will run on and why, and what to do about anything missing.</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var cmd = new Command("doctor", "Show the libraries, devices and cores the program will use, and how to fix what is missing");
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var findings = Doctor.Examine(App.NativeFromEnvironment(), Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"));
            int pad = findings.Max(f => f.What.Length) + 2;
            foreach (var f in findings)
            {
                Console.WriteLine($"{(f.What + ":").PadRight(pad)}{f.Found}");
                if (f.Advice is not null) Console.WriteLine($"{"".PadRight(pad)}-> {f.Advice}");
            }
            return 0;
        }));
        return cmd;
    }
}
