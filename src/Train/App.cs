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
        root.Subcommands.Add(SynthCommand.Create());
        root.Subcommands.Add(PlotCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DiagCommand.Create());
        root.Subcommands.Add(DoctorCommand.Create());
        TrainCommand.ReportsHook = PlotCommand.AfterTraining;
        return root;
    }

    public static int Run(string[] args)
    {
        var root = Build();
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message} (see --help)");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>Runs a verb: a user error is one line with its exit code; anything else is exit 1.</summary>
    public static int Guard(ParseResult parse, Func<int> body)
    {
        bool verbose = parse.GetValue(Verbose);
        try { return body(); }
        catch (Exception e) when (Unwrap(e) is var inner && inner is not OutOfMemoryException)
        {
            int code = inner switch { UserError u => u.ExitCode, ArgumentException => 2, _ => 1 };
            Console.Error.WriteLine($"error: {inner.Message.Split('\n')[0].Trim()}");
            if (verbose) Console.Error.WriteLine(inner);
            return code;
        }
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
