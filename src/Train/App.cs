using System.CommandLine;
using System.CommandLine.Parsing;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Cli;

/// <summary>The command line: verbs, options, and the one place that turns failures into one line + exit code.</summary>
public static class App
{
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show stack traces on errors", Recursive = true };

    public static RootCommand Build()
    {
        var root = new RootCommand("Keras.MobileNet: train, evaluate and compare MobileNetV2 widths (TorchSharp backend).");
        root.Options.Add(Verbose);
        TrainCommand.Configure(root);
        root.Subcommands.Add(SummaryCommand.Create());
        root.Subcommands.Add(DownloadCommand.Create());
        root.Subcommands.Add(EvaluateCommand.Create());
        root.Subcommands.Add(PredictCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        root.Subcommands.Add(SynthCommand.Create());
        root.Subcommands.Add(PlotCommand.Create());
        root.Subcommands.Add(SweepCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DiagCommand.Create());
        root.Subcommands.Add(DoctorCommand.Create());
        InvariantNumbers(root);
        return root;
    }

    /// <summary>
    /// Every number option parses one way: invariant, no group separators ("--lr 0,001" was read as 1, a comma taken
    /// for a thousands separator), finite.
    /// </summary>
    internal static void InvariantNumbers(Command command)
    {
        foreach (var o in command.Options)
            if (o is Option<double> d) d.CustomParser = r => Number(r) ?? 0;
            else if (o is Option<double?> n) n.CustomParser = Number;
        foreach (var sub in command.Subcommands) InvariantNumbers(sub);
    }

    static double? Number(ArgumentResult r)
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        if (double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) && double.IsFinite(v))
            return v;
        string name = (r.Parent as OptionResult)?.Option.Name ?? "option";
        r.AddError($"{name} must be a number such as 0.001 or 1e-3 (no thousands separators), not '{text}'");
        return null;
    }

    public static int Run(string[] args)
    {
        HeapSettings.KeepBatchMemory();
        // The kill test's fault points (tools/kill-test.sh): read here, so the library reads no environment.
        FaultPoints.Configure(int.TryParse(Environment.GetEnvironmentVariable("KM_FAULT_KILL_AT"), out var k) ? k : null,
            Environment.GetEnvironmentVariable("KM_FAULT_COUNT"));
        var root = Build();
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message} (see --help)");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>The user's CUDA libtorch where TORCH_LIB_DIR and LIBTORCHSHARP_PATH are both set (docs/gpu.md), else null.</summary>
    public static NativeLibTorch? NativeFromEnvironment() =>
        Environment.GetEnvironmentVariable("TORCH_LIB_DIR") is { Length: > 0 } dir && Environment.GetEnvironmentVariable("LIBTORCHSHARP_PATH") is { Length: > 0 } sharp
            ? new NativeLibTorch(dir, sharp) : null;

    /// <summary>TORCH_CPP_LOG_LEVEL set by the user: libtorch's warnings are theirs to see.</summary>
    public static bool KeepNativeLogLevel => Environment.GetEnvironmentVariable("TORCH_CPP_LOG_LEVEL") is not null;

    /// <summary>A test aid read from the environment, never an option: KM_THROTTLE_MS=N sleeps N ms after each training batch.</summary>
    public static int ThrottleMs { get; } = int.TryParse(Environment.GetEnvironmentVariable("KM_THROTTLE_MS"), out var ms) && ms > 0 ? ms : 0;

    /// <summary>Runs a verb: a user error is one line with its exit code; anything else is exit 1.</summary>
    public static int Guard(ParseResult parse, Func<int> body)
    {
        bool verbose = parse.GetValue(Verbose);
        try
        {
            TorchRuntime.Initialize(NativeFromEnvironment(), KeepNativeLogLevel); // before any TorchSharp call of the verb
            return body();
        }
        catch (Exception e) when (Unwrap(e) is var inner && inner is not OutOfMemoryException)
        {
            int code = inner switch { UserError u => u.ExitCode, ArgumentException => 2, _ => 1 };
            string message = inner is Training.RunMismatch m // the library names the field; the user typed its word
                ? $"--resume: {m.Folder} was trained with {TrainCommand.WordFor(m.Field)} {m.Stored}, not {m.Now}; resume with the same options or train into another --out"
                : inner.Message.Split('\n')[0].Trim();
            string line = $"error: {Printable(message, 400)}";
            // The machine's refusals are the user's to fix, not bugs: a full disk, a read-only or forbidden path.
            if (inner is IOException { HResult: var h } io && (h == 28 || h == 30 || io.Message.Contains("No space left", StringComparison.Ordinal)
                    || io.Message.Contains("Read-only file system", StringComparison.Ordinal)) || inner is UnauthorizedAccessException)
            {
                Console.Error.WriteLine(line);
                return 1;
            }
            if (inner is not (UserError or ArgumentException))
            {
                // Not the user's input: a bug or a native failure. The whole story goes to a file, still one line here.
                string report = Path.Combine(Path.GetTempPath(), $"keras-mobilenet-crash-{Environment.ProcessId}.txt");
                try
                {
                    File.WriteAllText(report, $"{DateTime.UtcNow:O}\nTrain {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n\n{inner}\n");
                    line += $" (an internal error; details in {report})";
                }
                catch (IOException) { }
                if (Environment.GetEnvironmentVariable("KM_CRASH_TO_STDERR") is not null) verbose = true;
            }
            Console.Error.WriteLine(line);
            if (verbose) Console.Error.WriteLine(inner);
            return code;
        }
    }

    /// <summary>The library's reports as plain lines on stdout, or stderr (where stdout is the command's answer).</summary>
    public static readonly Microsoft.Extensions.Logging.ILogger Stdout = new Backend.LineLogger(line => Console.WriteLine(line)),
        Stderr = new Backend.LineLogger(line => Console.Error.WriteLine(line));

    /// <summary>
    /// Text that came from files or folder names, safe for a terminal: control characters (an escape sequence in a class
    /// folder's name, raw bytes of a damaged file) shown as \xNN, and at most 400 characters.
    /// </summary>
    public static string Printable(string text, int max = int.MaxValue)
    {
        var sb = new System.Text.StringBuilder(Math.Min(text.Length, 400));
        foreach (char c in text)
        {
            if (sb.Length >= max) { sb.Append("..."); break; }
            if (char.IsControl(c) || c == '\uFFFD') sb.Append($"\\x{(int)c:X2}"); else sb.Append(c);
        }
        return sb.ToString();
    }

    static Exception Unwrap(Exception e) =>
        e is AggregateException { InnerExceptions.Count: 1 } a ? Unwrap(a.InnerExceptions[0])
        : e is System.Reflection.TargetInvocationException { InnerException: { } i } ? Unwrap(i) : e;

    public static Spectre.Console.IAnsiConsole Console2 { get; } = CreateConsole();

    static Spectre.Console.IAnsiConsole CreateConsole()
    {
        var c = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(Console.Out),
        });
        if (Console.IsOutputRedirected) c.Profile.Width = 160;
        return c;
    }
}
