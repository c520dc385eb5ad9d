using Keras.MobileNet.Cli;
using System.Diagnostics;
using k8s;
using k8s.Models;

namespace Keras.MobileNet.Tests;

/// <summary>The width x seed grid, the scheduler files of `sweep slurm` and `sweep k8s`, and a grid run end to end.</summary>
[Category("Slow")] // starts the Train program, a terminal or a server
public sealed class SweepTests() : WithTempDir("km-sweep-")
{
    static readonly SweepGrid Grid = new("paper", [1.0, 0.5, 0.25], [0, 7], "/runs/s");

    [Test]
    public void Task_indices_map_width_major_to_stable_folders()
    {
        var cells = Grid.Cells.ToList();
        Assert.That(cells.Select(c => (c.Width, c.Seed)), Is.EqualTo(new[] { (1.0, 0L), (1.0, 7L), (0.5, 0L), (0.5, 7L), (0.25, 0L), (0.25, 7L) }));
        Assert.That(cells.Select(c => c.Index), Is.EqualTo(Enumerable.Range(0, 6)));
        Assert.That(cells[3].Folder, Is.EqualTo("/runs/s/paper-w0.5-s7"));
        Assert.That(SweepGrid.CellName("Paper", 0.75, 12), Is.EqualTo("paper-w0.75-s12"), "--arch in any case names the same folder");
        Assert.Throws<ArgumentOutOfRangeException>(() => Grid.Cell(6));
    }

    [Test]
    public void The_task_index_comes_from_the_option_then_Slurm_then_Kubernetes()
    {
        var env = new Dictionary<string, string?> { ["SLURM_ARRAY_TASK_ID"] = "4", ["JOB_COMPLETION_INDEX"] = "2" };
        Assert.That(Grid.TaskIndex(1, n => env.GetValueOrDefault(n)), Is.EqualTo(1));
        Assert.That(Grid.TaskIndex(null, n => env.GetValueOrDefault(n)), Is.EqualTo(4));
        env.Remove("SLURM_ARRAY_TASK_ID");
        Assert.That(Grid.TaskIndex(null, n => env.GetValueOrDefault(n)), Is.EqualTo(2));
        Assert.That(Grid.TaskIndex(null, _ => null), Is.Null, "no index: every cell");
        env["JOB_COMPLETION_INDEX"] = "6";
        var e = Assert.Throws<UserError>(() => Grid.TaskIndex(null, n => env.GetValueOrDefault(n)))!;
        Assert.That(e.Message, Does.StartWith("JOB_COMPLETION_INDEX is 6").And.Contain("tasks 0-5"));
        env["JOB_COMPLETION_INDEX"] = "x";
        Assert.Throws<UserError>(() => Grid.TaskIndex(null, n => env.GetValueOrDefault(n)));
    }

    static readonly string[] TrainArgs = ["--arch", "paper", "--width", "1,0.5,0.25", "--seeds", "0,7", "--out", "/runs/s", "--data", "my data", "--epochs", "3"];
    static readonly string[] MergeArgs = ["sweep", "merge", "--arch", "paper", "--width", "1,0.5,0.25", "--seeds", "0,7", "--out", "/runs/s"];

    [Test]
    public void The_Slurm_array_has_one_task_per_cell_and_the_merge_waits_for_all()
    {
        var files = SweepScripts.Slurm(Grid, ["dotnet", "/opt/km/Train.dll"], TrainArgs, MergeArgs, "/home/u/km", "/runs/s/logs",
            new SchedulerOptions("km", Partition: "gpu", Time: "2:00:00", GpusPerTask: 1, CpusPerTask: 16));
        string train = files["train.sbatch"];
        Assert.That(train, Does.Contain("#SBATCH --array=0-5\n").And.Contain("#SBATCH --requeue\n").And.Contain("#SBATCH --partition=gpu\n")
            .And.Contain("#SBATCH --gpus-per-task=1\n").And.Contain("#SBATCH --cpus-per-task=16\n").And.Contain("#SBATCH --time=2:00:00\n")
            .And.Contain("#SBATCH --chdir=/home/u/km\n").And.Contain("#SBATCH --output=/runs/s/logs/%x-%A_%a.out\n"));
        Assert.That(train, Does.Contain("exec dotnet /opt/km/Train.dll --arch paper --width 1,0.5,0.25 --seeds 0,7 --out /runs/s --data 'my data' --epochs 3 --task-index \"$SLURM_ARRAY_TASK_ID\"\n"));
        Assert.That(train, Does.Contain("#   task 3: width 0.5, seed 7 -> /runs/s/paper-w0.5-s7"));
        Assert.That(files["merge.sbatch"], Does.Contain("exec dotnet /opt/km/Train.dll sweep merge --arch paper").And.Not.Contain("--array").And.Not.Contain("gpus"));
        Assert.That(files["submit.sh"], Does.Contain("--dependency=afterok:$train"));
        foreach (var (name, text) in files)
        {
            string path = Path.Combine(dir, name);
            File.WriteAllText(path, text);
            using var bash = Process.Start(new ProcessStartInfo("bash", ["-n", path]) { RedirectStandardError = true })!;
            bash.WaitForExit();
            Assert.That(bash.ExitCode, Is.EqualTo(0), $"{name}: {bash.StandardError.ReadToEnd()}");
        }
        Assert.That(SweepScripts.Quote("it's"), Is.EqualTo("'it'\\''s'"));
    }

    static readonly Dictionary<string, Type> JobTypes = new() { ["batch/v1/Job"] = typeof(V1Job) };

    [Test]
    public void The_Kubernetes_manifests_are_Jobs_that_the_API_types_read_strictly()
    {
        var files = SweepScripts.Kubernetes(Grid, null, TrainArgs, MergeArgs,
            new SchedulerOptions("km-sweep", GpusPerTask: 1, Memory: "32Gi", Image: "registry.example/km:1", VolumeClaim: "km-work", MountPath: "/work"));
        // Strict: a misspelt or misplaced field is an error, as the API server's schema would make it.
        var job = (V1Job)KubernetesYaml.LoadAllFromString(files["job.yaml"], JobTypes, strict: true).Single();
        Assert.That((job.ApiVersion, job.Kind, job.Metadata.Name), Is.EqualTo(("batch/v1", "Job", "km-sweep")));
        Assert.That(job.Spec.CompletionMode, Is.EqualTo("Indexed"));
        Assert.That((job.Spec.Completions, job.Spec.Parallelism), Is.EqualTo((6, 6)));
        var pod = job.Spec.Template.Spec;
        Assert.That(pod.RestartPolicy, Is.AnyOf("OnFailure", "Never"), "a Job's pods may not restart Always");
        var c = pod.Containers.Single();
        Assert.That(c.Image, Is.EqualTo("registry.example/km:1"));
        Assert.That(c.Command, Is.Null, "the image's entrypoint starts the program");
        Assert.That(c.Args, Is.EqualTo(TrainArgs), "the index comes from JOB_COMPLETION_INDEX, which Kubernetes sets in Indexed mode");
        Assert.That(c.Resources.Limits["nvidia.com/gpu"].ToString(), Is.EqualTo("1"));
        Assert.That(c.Resources.Limits["memory"].ToString(), Is.EqualTo("32Gi"));
        Assert.That(c.WorkingDir, Is.EqualTo("/work"));
        Assert.That(c.VolumeMounts.Single().MountPath, Is.EqualTo("/work"));
        Assert.That(pod.Volumes.Single().PersistentVolumeClaim.ClaimName, Is.EqualTo("km-work"));
        Assert.That(c.VolumeMounts.Single().Name, Is.EqualTo(pod.Volumes.Single().Name));

        var merge = (V1Job)KubernetesYaml.LoadAllFromString(files["merge.yaml"], JobTypes, strict: true).Single();
        Assert.That(merge.Spec.CompletionMode, Is.Null);
        Assert.That(merge.Spec.Completions, Is.EqualTo(1));
        Assert.That(merge.Spec.Template.Spec.Containers.Single().Args, Is.EqualTo(MergeArgs));
        Assert.That(merge.Spec.Template.Spec.Containers.Single().Resources?.Limits?.ContainsKey("nvidia.com/gpu") ?? false, Is.False);
        Assert.That(files["submit.sh"], Does.Contain("kubectl wait --for=condition=complete job/km-sweep "));

        // The check itself can fail: a field in the wrong place is refused.
        Assert.That(() => KubernetesYaml.LoadAllFromString(files["job.yaml"].Replace("  completionMode:", "  completionMod:"), JobTypes, strict: true),
            Throws.Exception);
    }

    [Test]
    public void A_grid_skips_complete_cells_and_each_seed_changes_the_run()
    {
        string data = Path.Combine(dir, "data");
        Assert.That(Cli.Run(dir, "synth", "--out", data, "--classes", "2", "--train", "6", "--val", "2", "--size", "32").ExitCode, Is.EqualTo(0));
        string[] args = ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.25",
            "--seeds", "3,4", "--arch", "notebook", "--workers", "1", "--out", Path.Combine(dir, "grid"), "--tensorboard", "false"];
        var first = Cli.Run(dir, args);
        Assert.That(first.ExitCode, Is.EqualTo(0), first.Err);
        string a = Path.Combine(dir, "grid", "notebook-w0.25-s3"), b = Path.Combine(dir, "grid", "notebook-w0.25-s4");
        Assert.That(File.ReadAllText(Path.Combine(a, "history.csv")), Is.Not.EqualTo(File.ReadAllText(Path.Combine(b, "history.csv"))),
            "another seed, another order and initialisation");
        Assert.That(File.Exists(Path.Combine(dir, "grid", "report.md")), "the comparison of the grid");
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(a, "best.safetensors"));

        var again = Cli.Run(dir, [.. args, "--task-index", "1"]);
        Assert.That(again.ExitCode, Is.EqualTo(0), again.Err);
        Assert.That(again.Out, Does.Contain($"task 1: width 0.25, seed 4 -> {b}").And.Contain($"{b}: complete, skipped"));
        Assert.That(again.Out, Does.Not.Contain("Epoch 1/1"));
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(a, "best.safetensors")), Is.EqualTo(stamp));

        var bad = Cli.Run(dir, [.. args, "--task-index", "2"]);
        Assert.That((bad.ExitCode, bad.Err.Trim()), Is.EqualTo((2, "error: --task-index is 2, but the grid of 1 width(s) x 2 seed(s) has tasks 0-1")));
    }

    [Test]
    public void SIGTERM_stops_at_a_batch_boundary_and_the_same_command_resumes_to_the_uninterrupted_run()
    {
        string data = Path.Combine(dir, "data");
        Assert.That(Cli.Run(dir, "synth", "--out", data, "--classes", "2", "--train", "8", "--val", "2", "--size", "32").ExitCode, Is.EqualTo(0));
        string[] Args(string @out) => ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "3", "--batch-size", "4", "--width", "0.25",
            "--seeds", "5", "--arch", "notebook", "--workers", "1", "--out", Path.Combine(dir, @out), "--tensorboard", "false"];
        string cell = Path.Combine(dir, "stopped", "notebook-w0.25-s5");
        using (var p = Process.Start(Cli.Throttled(300, dir, [.. Args("stopped")]))!)
        {
            var output = p.StandardOutput.ReadToEndAsync();
            var err = p.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(cell, "trainer_state.json")) && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(50);
            Assert.That(File.Exists(Path.Combine(cell, "trainer_state.json")), "epoch 1 was committed");
            Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
            Assert.That(p.WaitForExit(60_000), "SIGTERM ended the run");
            Assert.That(p.ExitCode, Is.EqualTo(143), output.Result + err.Result);
            Assert.That(err.Result, Does.Contain($"stopped by SIGTERM: {cell} keeps epoch"));
        }
        Assert.That(Directory.GetFiles(cell, "*.tmp", SearchOption.AllDirectories), Is.Empty);
        var resumed = Cli.Run(dir, Args("stopped"));
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.Err);
        Assert.That(resumed.Out, Does.Contain($"resuming {cell} after epoch"));
        var reference = Cli.Run(dir, Args("reference"));
        Assert.That(reference.ExitCode, Is.EqualTo(0), reference.Err);
        string refCell = Path.Combine(dir, "reference", "notebook-w0.25-s5");
        static IEnumerable<string> Rows(string d) => File.ReadAllLines(Path.Combine(d, "history.csv")).Select(l => string.Join(',', l.Split(',')[..7]));
        Assert.That(Rows(cell), Is.EqualTo(Rows(refCell)));
        Assert.That(File.ReadAllBytes(Path.Combine(cell, "best.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(refCell, "best.safetensors"))));
    }

    [Test]
    public void Sweep_commands_check_the_training_options_before_writing_anything()
    {
        string outDir = Path.Combine(dir, "s");
        var r = Cli.Run(dir, "sweep", "slurm", "--width", "1,0.5", "--out", outDir, "--", "--lr", "-1");
        Assert.That((r.ExitCode, r.Err.Trim()), Is.EqualTo((2, "error: --lr must be > 0, not -1")));
        r = Cli.Run(dir, "sweep", "slurm", "--width", "1,0.5", "--out", outDir, "--", "--seed", "3");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Err, Does.StartWith("error: --seed after \"--\""));
        r = Cli.Run(dir, "sweep", "k8s", "--width", "1", "--out", "runs", "--image", "km:1", "--job-name", "Bad_Name", "--scripts", outDir);
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Err, Does.StartWith("error: --job-name must be a DNS label"));
        Assert.That(Directory.Exists(outDir), Is.False);
        r = Cli.Run(dir, "sweep", "merge", "--width", "1,0.5", "--seeds", "0,1", "--out", outDir);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Err, Does.StartWith($"error: 4 of 4 cells are not complete, first {outDir}/paper-w1-s0"));
    }
}
