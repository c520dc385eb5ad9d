using Keras.MobileNet.Cli;

namespace Keras.MobileNet.Tests;

/// <summary>--help shows each choice once, in the words users type, and each default once.</summary>
public sealed class HelpTests
{
    static string Help(params string[] args)
    {
        var output = new StringWriter();
        App.Build().Parse([.. args, "--help"]).Invoke(new System.CommandLine.InvocationConfiguration { Output = output });
        return output.ToString();
    }

    [Test]
    public void Choices_are_the_words_users_type_and_each_default_is_shown_once()
    {
        string help = string.Join(' ', Help().Split('\n').Select(l => l.Trim()));
        Assert.That(help, Does.Contain("--arch <paper|notebook>").And.Contain("--precision <fp32|bf16>").And.Contain("--size <full|320|160>")
            .And.Contain("--memory-format <auto|contiguous|channels_last>"));
        foreach (var (option, word) in new[] { ("arch", "paper"), ("dataset", "imagenette"), ("schedule", "epoch"), ("precision", "fp32"), ("bn-mode", "frozen") })
        {
            string line = Help().Split('\n').First(l => l.TrimStart().StartsWith($"--{option} "));
            Assert.That(System.Text.RegularExpressions.Regex.Matches(line, "default").Count, Is.EqualTo(1), line);
            Assert.That(line, Does.Contain($"(default {word})"), line);
        }
        Assert.That(help, Does.Not.Contain("Paper").And.Not.Contain("Fp32").And.Not.Contain("<Notebook|"), "no enum member names");
    }

    [Test]
    public void An_absent_choice_is_its_default()
    {
        var (parsed, o) = TrainCommand.Parse([]);
        Assert.That(parsed.Errors, Is.Empty);
        var d = new TrainOptions();
        Assert.That((o.Arch, o.Dataset, o.Size, o.Schedule, o.Precision, o.MemoryFormat, o.BnMode), Is.EqualTo((d.Arch, d.Dataset, d.Size, d.Schedule, d.Precision, d.MemoryFormat, d.BnMode)));
    }

    static string Read<T>(string word, string[] args)
    {
        try { return System.Text.Json.JsonSerializer.Serialize(App.Build().Parse(args).GetValue<T>(word)); }
        catch (Exception e) { return e.Message; }
    }

    [Test]
    public void The_sweep_grid_options_are_the_training_tables_rows()
    {
        // The same words, choices and parsers: what train reads from a value, or refuses, sweep reads or refuses alike.
        string[] Sweep(params string[] a) => ["sweep", "slurm", "--out", "s", .. a];
        foreach (var value in new[] { "0.5,1", "0.5,wide", "-1" })
            Assert.That(Read<double[]>("--width", Sweep("--width", value)), Is.EqualTo(Read<double[]>("--width", ["--width", value])), value);
        foreach (var value in new[] { "0,1,2", "1,x" })
            Assert.That(Read<long[]>("--seeds", Sweep("--seeds", value)), Is.EqualTo(Read<long[]>("--seeds", ["--seeds", value])), value);
        Assert.That(Read<Architecture.Preset>("--arch", Sweep("--arch", "notebook")), Is.EqualTo(Read<Architecture.Preset>("--arch", ["--arch", "notebook"])));
        Assert.That(Read<double[]>("--width", Sweep("--width", "0.5,wide")), Does.Contain("--width must be numbers > 0"));
        Assert.That(App.Build().Parse(Sweep()).Errors.Select(e => e.Message), Does.Contain("Option '--width' is required."),
            "a grid has no default widths");
        Assert.That(Help("sweep", "k8s"), Does.Contain("--arch <paper|notebook>"));
        Assert.That(() => TrainCommand.Rows("--no-such-option"), Throws.ArgumentException);
    }
}
