using System.CommandLine;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Reports;
using Keras.MobileNet.Runs;
using Keras.MobileNet.Weights;
using Keras.MobileNet.Sweeps;

namespace Keras.MobileNet.Cli;

/// <summary>
/// sweep slurm | k8s: the scheduler's files for a width x seed grid, one task per cell; sweep merge: the comparison
/// once every cell is complete. The grid is given here (--width, --seeds, --arch, --out); every other training
/// option follows "--" and is checked now, before anything is submitted.
/// </summary>
public static class SweepCommand
{
    /// <summary>The grid's options: the training table's own rows for --width, --seeds, --arch and --out.</summary>
    static Func<ParseResult, SweepGrid> AddGrid(Command cmd)
    {
        var (options, read) = TrainCommand.Rows("--width", "--seeds", "--arch", "--out");
        // A grid has no default widths, and every task must share one folder.
        var width = (Option<double[]>)options[0];
        width.DefaultValueFactory = null;
        width.Description = "Widths of the grid: 1,0.75,0.5,0.25";
        options[0].Required = options[3].Required = true;
        options[3].Description = "The sweep folder every task shares (runs <out>/<arch>-w<width>-s<seed>)";
        foreach (var o in options) cmd.Options.Add(o);
        return p =>
        {
            var o = read(p);
            o = o with { Seeds = o.Seeds ?? [o.Seed] }; // a grid even of one width and one seed
            Config.TrainOptions.RequireDistinct(o.Widths, o.Seeds);
            return Training.Runner.Grid(o)!;
        };
    }

    /// <summary>Parses and validates the training command line a task will run; returns its arguments without the grid.</summary>
    static List<string> CheckTrainArgs(SweepGrid grid, string[] rest)
    {
        foreach (var a in rest)
            if (a is "--width" or "--seeds" or "--arch" or "--out" or "--task-index" or "--resume" or "--seed")
                throw new ArgumentException($"{a} after \"--\": the grid is given by the sweep's own --width, --seeds, --arch and --out, and each task resumes its cell by itself");
        var args = SweepScripts.GridArgs(grid).Concat(rest).ToList();
        var (parsed, options) = TrainCommand.Parse(args); // the training command's own table
        if (parsed.Errors.Count > 0) throw new ArgumentException($"the training options after \"--\": {parsed.Errors[0].Message}");
        options.Validate();
        return args;
    }

    public static Command Create()
    {
        var cmd = new Command("sweep", "Run a width x seed grid on Slurm (job array) or Kubernetes (Indexed Job), and merge it");
        cmd.Subcommands.Add(Slurm());
        cmd.Subcommands.Add(Kubernetes());
        cmd.Subcommands.Add(Merge());
        return cmd;
    }

    static Argument<string[]> Rest() => new("training-options") { Description = "Training options after --", Arity = ArgumentArity.ZeroOrMore };
    static Option<T?> Opt<T>(string name, string description) => new(name) { Description = description };

    /// <summary>The program as this process was started, for the scripts to run (dotnet + the absolute Train.dll).</summary>
    static string[] ThisProgram() => ["dotnet", typeof(SweepCommand).Assembly.Location];

    static Command Slurm()
    {
        var cmd = new Command("slurm", "Write an sbatch array job (one task per cell), its afterok merge job and submit.sh");
        var g = AddGrid(cmd);
        var partition = Opt<string>("--partition", "Slurm partition");
        var time = Opt<string>("--time", "Time limit per task, as sbatch takes it (2:00:00)");
        var gpus = Opt<int?>("--gpus-per-task", "GPUs per task (1 for one GPU per run)");
        var cpus = Opt<int?>("--cpus-per-task", "CPU cores per task (they prepare the batches)");
        var mem = Opt<string>("--mem", "Memory per task (32G)");
        var account = Opt<string>("--account", "Slurm account");
        var name = new Option<string>("--job-name") { Description = "Job name", DefaultValueFactory = _ => "km-sweep" };
        var command = Opt<string>("--command", "How a task starts the program (default: dotnet and this Train.dll)");
        var rest = Rest();
        foreach (var o in new Option[] { partition, time, gpus, cpus, mem, account, name, command }) cmd.Options.Add(o);
        cmd.Arguments.Add(rest);
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var grid = g(p);
            grid = grid with { Root = Path.GetFullPath(grid.Root) };
            var args = CheckTrainArgs(grid, p.GetValue(rest) ?? []);
            var s = new SchedulerOptions(p.GetValue(name)!, p.GetValue(partition), p.GetValue(time), p.GetValue(gpus), p.GetValue(cpus), p.GetValue(mem), p.GetValue(account));
            SweepScripts.Validate(s, Checked(grid, p.GetValue(command), args));
            string dir = Path.Combine(grid.Root, "slurm"), logs = Path.Combine(grid.Root, "logs");
            var program = p.GetValue(command) is string c ? c.Split(' ', StringSplitOptions.RemoveEmptyEntries) : ThisProgram();
            var files = SweepScripts.Slurm(grid, program, args, ["sweep", "merge", .. SweepScripts.GridArgs(grid)], Environment.CurrentDirectory, logs, s);
            Directory.CreateDirectory(logs); // sbatch does not create the folder of --output
            return Write(grid, dir, files, $"bash {dir}/submit.sh");
        }));
        return cmd;
    }

    static Command Kubernetes()
    {
        var cmd = new Command("k8s", "Write a Kubernetes Indexed Job (one pod per cell, one GPU each), its merge Job and submit.sh");
        var g = AddGrid(cmd);
        var image = new Option<string>("--image") { Description = "Container image with the program (tools/k8s/Dockerfile)", Required = true };
        var claim = Opt<string>("--volume-claim", "PersistentVolumeClaim mounted at --mount in every pod: the data and the sweep folder");
        var mount = new Option<string>("--mount") { Description = "Where the volume is mounted, and the pods' working folder", DefaultValueFactory = _ => "/work" };
        var gpus = new Option<int?>("--gpus-per-task") { Description = "GPUs per pod (nvidia.com/gpu)", DefaultValueFactory = _ => 1 };
        var cpus = Opt<int?>("--cpus-per-task", "CPU limit per pod");
        var mem = Opt<string>("--mem", "Memory limit per pod (32Gi)");
        var ns = Opt<string>("--namespace", "Namespace");
        var name = new Option<string>("--job-name") { Description = "Job name (a DNS label)", DefaultValueFactory = _ => "km-sweep" };
        var command = Opt<string>("--command", "Container command (default: the image's entrypoint)");
        var scripts = Opt<string>("--scripts", "Where to write the manifests (default <job-name>-k8s)");
        var rest = Rest();
        foreach (var o in new Option[] { image, claim, mount, gpus, cpus, mem, ns, name, command, scripts }) cmd.Options.Add(o);
        cmd.Arguments.Add(rest);
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var grid = g(p);
            string job = p.GetValue(name)!;
            if (!System.Text.RegularExpressions.Regex.IsMatch(job, "^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$"))
                throw new ArgumentException($"--job-name must be a DNS label of at most 52 characters (a-z, 0-9, -), not '{job}'");
            var args = CheckTrainArgs(grid, p.GetValue(rest) ?? []);
            var s = new SchedulerOptions(job, GpusPerTask: p.GetValue(gpus), CpusPerTask: p.GetValue(cpus), Memory: p.GetValue(mem), Image: p.GetValue(image),
                VolumeClaim: p.GetValue(claim), MountPath: p.GetValue(mount)!, Namespace: p.GetValue(ns));
            SweepScripts.Validate(s, Checked(grid, p.GetValue(command), args));
            var program = p.GetValue(command)?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var files = SweepScripts.Kubernetes(grid, program, args, ["sweep", "merge", .. SweepScripts.GridArgs(grid)], s);
            string dir = p.GetValue(scripts) ?? $"{job}-k8s";
            return Write(grid, dir, files, $"bash {dir}/submit.sh");
        }));
        return cmd;
    }

    /// <summary>The values besides the scheduler's own that land in its files: the sweep folder, the command, the training words.</summary>
    static IEnumerable<(string, string?)> Checked(SweepGrid grid, string? command, IEnumerable<string> trainArgs) =>
        new (string, string?)[] { ("--out", grid.Root), ("--command", command) }.Concat(trainArgs.Select(a => ("the training options after \"--\"", (string?)a)));

    static int Write(SweepGrid grid, string dir, IReadOnlyDictionary<string, string> files, string submit)
    {
        Directory.CreateDirectory(dir);
        foreach (var (file, text) in files)
        {
            string path = Path.Combine(dir, file);
            Files.WriteAtomic(path, text);
            if (!OperatingSystem.IsWindows() && (file.EndsWith(".sh") || file.EndsWith(".sbatch")))
                File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            Console.WriteLine(path);
        }
        foreach (var c in grid.Cells) Console.WriteLine($"  {c}");
        Console.WriteLine($"submit: {submit}");
        return 0;
    }

    static Command Merge()
    {
        var cmd = new Command("merge", "Check that every cell of the grid is complete, then draw the comparison into --out");
        var g = AddGrid(cmd);
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var grid = g(p);
            var missing = grid.Cells.Where(c => RunReader.Completed(c.Folder) is null).ToList();
            if (missing.Count > 0)
                throw new UserError($"{missing.Count} of {grid.Count} cells are not complete, first {missing[0].Folder} ({missing[0]}); run that task again");
            var runs = grid.Cells.Select(c => RunData.Load(c.Folder)).ToList();
            var written = Report.Draw(runs, grid.Root);
            foreach (var f in written) Console.WriteLine(f);
            return 0;
        }));
        return cmd;
    }
}
