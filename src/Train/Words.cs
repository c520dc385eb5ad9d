using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Runs;

namespace Keras.MobileNet.Cli;

/// <summary>
/// The edge: every option word becomes a typed value here, once (enums, lists, devices), and a word that is not one
/// of the choices is a one-line usage error naming the option. Nothing below the command line compares option strings.
/// </summary>
public static class Words
{
    /// <summary>An enum option: its words are the run files' (Files.Word: "paper", "channels_last", "320"), any case.</summary>
    /// <remarks>
    /// Help shows the choices once, in the words users type (<c>--arch &lt;paper|notebook&gt;</c>), and the default once. So
    /// there is no default-value factory (System.CommandLine would print the enum's own name, "[default: Paper]"): an
    /// absent option is <c>default(T)</c>, and every choice's default is its enum's first member, which this checks.
    /// </remarks>
    public static Option<T> Choice<T>(string name, string description, T defaultValue) where T : struct, Enum
    {
        if (!EqualityComparer<T>.Default.Equals(defaultValue, default))
            throw new InvalidOperationException($"{name}: the default {defaultValue} must be the first member of {typeof(T).Name}");
        return new(name)
        {
            Description = $"{description} (default {Files.Word(defaultValue)})",
            HelpName = string.Join('|', Enum.GetValues<T>().Select(v => Files.Word(v))),
            CustomParser = r => r.Tokens.Count == 0 ? defaultValue : Choice(r, Enum.GetValues<T>().ToDictionary(v => Files.Word(v), v => v)),
        };
    }

    /// <summary>One of a few words, case-insensitive; anything else is a one-line usage error naming the choices.</summary>
    public static T Choice<T>(ArgumentResult r, Dictionary<string, T> values)
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        if (values.TryGetValue(text.ToLowerInvariant(), out var v)) return v;
        r.AddError($"{Name(r)} must be {string.Join(", ", values.Keys.SkipLast(1))} or {values.Keys.Last()}, not '{text}'");
        return values.Values.First();
    }

    static string Name(ArgumentResult r) => (r.Parent as OptionResult)?.Option.Name ?? "option";

    /// <summary>An option whose value is parsed by <paramref name="parse"/>; an ArgumentException from it is the usage error.</summary>
    public static Option<T> Parsed<T>(string name, string description, T defaultValue, Func<string, T> parse) => new(name)
    {
        Description = description,
        Arity = ArgumentArity.ExactlyOne, // one word, even for a list type ("--width 1,0.5")
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0) return defaultValue;
            try { return parse(r.Tokens[^1].Value); }
            catch (Exception e) when (e is ArgumentException or UserError) { r.AddError(e.Message); return defaultValue; }
        },
    };

    public static long[] Seeds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--seeds needs a value");
        return parts.Select(s => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v : throw new ArgumentException($"--seeds must be whole numbers such as 0,1,2, not '{s}'")).ToArray();
    }

    public static double[] Widths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--width needs a value");
        return parts.Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
            ? v : throw new ArgumentException($"--width must be numbers > 0, not '{s}'")).ToArray();
    }

    /// <summary>auto, cpu, cuda or cuda:N. Pure: no device is touched.</summary>
    public static DeviceChoice Device(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        if (n == "auto") return DeviceChoice.Auto;
        if (n == "cpu") return DeviceChoice.Cpu;
        if (n == "cuda") return new DeviceChoice(DeviceKind.Cuda);
        if (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n[5..], NumberStyles.None, CultureInfo.InvariantCulture, out int i))
            return new DeviceChoice(DeviceKind.Cuda, i);
        throw new UserError($"--device must be auto, cpu, cuda or cuda:N, not '{name}'", 2);
    }

    public static Option<DeviceChoice> DeviceOption(string description = "auto, cpu, cuda or cuda:N") =>
        Parsed("--device", description, DeviceChoice.Auto, Device);

    public static Option<Model.Precision> PrecisionOption() => Choice("--precision",
        "fp32, or bf16 mixed precision (convolutions in bf16; weights, BatchNorm statistics and the loss in fp32)", Model.Precision.Fp32);

    public static Option<Model.MemoryFormat> MemoryFormatOption() => Choice("--memory-format",
        "Layout of activations and conv weights: auto is channels_last (faster on CUDA and on this CPU at 224: docs/benchmarks.md)", Model.MemoryFormat.Auto);

    public static Option<Model.InferenceEngine> InferenceEngineOption() => Choice("--inference-engine",
        "What runs evaluation, validation and prediction: auto is onnxruntime on a CPU (BatchNorm folded, several times faster there), torch on a GPU", Model.InferenceEngine.Auto);

    /// <summary>The user's command line with some options set to other values (added when absent).</summary>
    public static string CommandWith(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> set)
    {
        var outArgs = new List<string>();
        var done = new HashSet<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] is "--estimate-only" or "--resume") continue;
            if (set.TryGetValue(args[i], out var v) && i + 1 < args.Count)
            {
                outArgs.Add(args[i]);
                outArgs.Add(v);
                done.Add(args[i]);
                i++;
                continue;
            }
            outArgs.Add(args[i]);
        }
        foreach (var (k, v) in set) if (!done.Contains(k)) { outArgs.Add(k); outArgs.Add(v); }
        return Program + " " + string.Join(' ', outArgs.Select(Quote));
    }

    /// <summary>How the user started this program, for a command line to copy: the dotnet tool's command, or the README's.</summary>
    public static string Program => Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "keras-mobilenet" ? "keras-mobilenet" : "dotnet run --project src/Train --";

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./,=:+".Contains(c)) ? a : $"'{a.Replace("'", "'\\''")}'";

    /// <summary>--checkpoint RUN: a run folder, or a .safetensors next to its model.json.</summary>
    public static Option<string?> CheckpointOption() => new("--checkpoint") { Description = "Run folder or .safetensors (next to its model.json)" };
}
