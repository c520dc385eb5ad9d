using Keras.MobileNet.Cli;
using System.Diagnostics;

namespace Keras.MobileNet.Tests;

/// <summary>
/// Names typed by a user land in shell scripts and YAML as data, never as code (issue 22, item 3): the generated
/// files run with stub sbatch, kubectl and dotnet on the PATH, and nothing runs that the user did not ask for.
/// </summary>
[Category("Slow")]
public sealed class SchedulerInjectionTests() : WithTempDir("km-inject-")
{
    string Data => Path.Combine(dir, "data");
    string Log => Path.Combine(dir, "calls.log");
    string Pwned => Path.Combine(dir, "pwned");

    /// <summary>A folder of stubs: each logs its argument words, one per line; sbatch also runs the script it is given (as a task would).</summary>
    string Stubs()
    {
        string bin = Path.Combine(dir, "bin");
        Directory.CreateDirectory(bin);
        void Stub(string name, string body)
        {
            string path = Path.Combine(bin, name);
            File.WriteAllText(path, $"#!/bin/bash\n{{ echo \"== {name}\"; for a in \"$@\"; do printf '%s\\n' \"$a\"; done; }} >> {SweepScripts.Quote(Log)}\n{body}");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }
        Stub("sbatch", "script=${!#}; [ -f \"$script\" ] && SLURM_ARRAY_TASK_ID=0 bash \"$script\" >/dev/null 2>&1\necho 42\n");
        Stub("kubectl", "");
        Stub("dotnet", "");
        return bin;
    }

    Cli.Result Sweep(params string[] args) => Cli.Run(dir, ["sweep", .. args]);

    string[] TrainWords => ["--", "--dataset", "folder", "--data", Data, "--epochs", "1", "--image-size", "32"];

    /// <summary>Runs submit.sh with the stubs first on the PATH; returns the logged calls.</summary>
    string Submit(string script)
    {
        var psi = new ProcessStartInfo("bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PATH"] = Stubs() + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), output);
        return File.ReadAllText(Log);
    }

    [TestCase("s $(touch PWNED)")]
    [TestCase("s `touch PWNED`")]
    [TestCase("s; touch PWNED")]
    [TestCase("it's $HOME & 'quoted'")]
    public void A_hostile_sweep_folder_reaches_the_task_as_one_word_and_runs_nothing(string name)
    {
        Synthetic.ShapesFolder(Data, classes: 2, trainPerClass: 2, valPerClass: 1, size: 32);
        string root = Path.Combine(dir, name.Replace("PWNED", Pwned));
        var r = Sweep(["slurm", "--width", "0.25,0.5", "--out", root, "--job-name", "km", .. TrainWords]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Out + r.Err);
        string calls = Submit(Path.Combine(root, "slurm", "submit.sh"));
        Assert.That(File.Exists(Pwned), Is.False, "the name ran as a command");
        Assert.That(calls, Does.Contain("== dotnet\n"), "the task started the program");
        var words = calls.Split('\n');
        int at = Array.IndexOf(words, "--out");
        Assert.That(words[at + 1], Is.EqualTo(root), "--out reached the task whole");
        Assert.That(calls, Does.Contain("--task-index\n0\n"));
        string train = File.ReadAllText(Path.Combine(root, "slurm", "train.sbatch"));
        foreach (var directive in new[] { "--array=0-1", "--requeue", "--signal=B:TERM@120" })
            Assert.That(train, Does.Contain($"#SBATCH {directive}\n"));
    }

    [TestCase("--out", "s\nrm -rf /")]
    [TestCase("--job-name", "km\n#SBATCH --array=0-99")]
    [TestCase("--partition", "gpu\ntouch x")]
    [TestCase("--time", "2:00:00\necho hi")]
    [TestCase("--mem", "32G\r")]
    public void A_control_character_in_a_value_is_refused(string option, string value)
    {
        string[] args = ["slurm", "--width", "0.25", "--seeds", "0,1", "--out", option == "--out" ? Path.Combine(dir, value) : Path.Combine(dir, "s"), .. TrainWords];
        if (option != "--out") args = [.. args[..7], option, value, .. args[7..]];
        var r = Sweep(args);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err.Trim(), Does.Contain(option).And.Contain("control character"));
        Assert.That(r.Err.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Directory.Exists(Path.Combine(dir, "s")), Is.False, "nothing written");
    }

    [TestCase("--time", "2 hours", "a Slurm time")]
    [TestCase("--time", "$(id)", "a Slurm time")]
    [TestCase("--mem", "lots", "a size such as 32G")]
    [TestCase("--job-name", "a b", "letters, digits")]
    [TestCase("--job-name", "x\"y", "letters, digits")]
    [TestCase("--partition", "gpu;id", "a partition name")]
    [TestCase("--gpus-per-task", "-1", "--gpus-per-task must be >= 0")]
    [TestCase("--cpus-per-task", "0", "--cpus-per-task must be at least 1")]
    public void Slurm_values_outside_their_format_are_refused(string option, string value, string message)
    {
        var r = Sweep(["slurm", "--width", "0.25", "--seeds", "0,1", "--out", Path.Combine(dir, "s"), option, value, .. TrainWords]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain(option).And.Contain(message));
    }

    [TestCase("--cpus-per-task", "-4", "--cpus-per-task must be at least 1")]
    [TestCase("--gpus-per-task", "-1", "--gpus-per-task must be >= 0")]
    [TestCase("--namespace", "a;b", "--namespace must be a DNS label")]
    [TestCase("--image", "img\nkind: Pod", "control character")]
    public void Kubernetes_values_are_checked(string option, string value, string message)
    {
        string[] image = option == "--image" ? [] : ["--image", "km:1"];
        var r = Sweep(["k8s", "--width", "0.25", "--seeds", "0,1", "--out", Path.Combine(dir, "s"), .. image, option, value,
            "--scripts", Path.Combine(dir, "k"), .. TrainWords]);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain(message));
        Assert.That(Directory.Exists(Path.Combine(dir, "k")), Is.False);
    }

    [Test]
    public void Kubernetes_submit_runs_only_kubectl_with_the_names_as_words()
    {
        Synthetic.ShapesFolder(Data, classes: 2, trainPerClass: 2, valPerClass: 1, size: 32);
        string scripts = Path.Combine(dir, "k $(touch PWNED)".Replace("PWNED", Pwned));
        var r = Sweep(["k8s", "--width", "0.25,0.5", "--out", "/work/s `touch x` $(id)", "--image", "km:1 $(touch y)", "--namespace", "team-a",
            "--scripts", scripts, .. TrainWords]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Out + r.Err);
        string calls = Submit(Path.Combine(scripts, "submit.sh"));
        Assert.That(File.Exists(Pwned), Is.False);
        Assert.That(calls.Split("== ").Where(c => c.Length > 0).Select(c => c.Split('\n')[0]), Is.All.EqualTo("kubectl"));
        Assert.That(calls, Does.Contain("-n\nteam-a\n--for=condition=complete\njob/km-sweep\n"));
        string job = File.ReadAllText(Path.Combine(scripts, "job.yaml"));
        string Yaml(string v) => System.Text.Json.JsonSerializer.Serialize(v);
        Assert.That(job, Does.Contain($"image: {Yaml("km:1 $(touch y)")}\n").And.Contain(Yaml("/work/s `touch x` $(id)")));
    }
}
