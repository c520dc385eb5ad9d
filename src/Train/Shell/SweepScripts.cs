using System.Globalization;
using System.Text;
using System.Text.Json;

using Keras.MobileNet.Weights;
using Keras.MobileNet.Sweeps;

namespace Keras.MobileNet.Cli;

/// <summary>Where and how a sweep's tasks run: what the scheduler needs beyond the grid. Null fields are left out.</summary>
public sealed record SchedulerOptions(
    string Name, string? Partition = null, string? Time = null, int? GpusPerTask = null, int? CpusPerTask = null, string? Memory = null,
    string? Account = null, string? Image = null, string? VolumeClaim = null, string MountPath = "/work", string? Namespace = null);

/// <summary>
/// The files a scheduler runs: a Slurm array job plus its dependent merge job, or a Kubernetes Indexed Job plus its
/// merge Job. Pure: the command and arguments in, the file texts out. Each task runs the same command line; its index
/// (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX) picks its cell, so a requeued or restarted task resumes its own run.
/// </summary>
public static class SweepScripts
{
    /// <summary>A word for bash, single-quoted unless it is plainly safe.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? word : "'" + word.Replace("'", "'\\''") + "'";

    static string Line(IEnumerable<string> words) => string.Join(' ', words.Select(Quote));

    /// <summary>
    /// Checks every value that lands in a scheduler's file: no control characters anywhere (a newline would end the
    /// #SBATCH block or start a shell line), names from a plain alphabet, and Slurm's own formats for --time and --mem.
    /// The first problem is an ArgumentException naming the option.
    /// </summary>
    public static void Validate(SchedulerOptions s, IEnumerable<(string Option, string? Value)> more)
    {
        var values = new (string Option, string? Value)[]
        {
            ("--job-name", s.Name), ("--partition", s.Partition), ("--time", s.Time), ("--mem", s.Memory), ("--account", s.Account),
            ("--image", s.Image), ("--volume-claim", s.VolumeClaim), ("--mount", s.MountPath), ("--namespace", s.Namespace),
        }.Concat(more);
        foreach (var (option, value) in values)
            if (value is not null && value.Any(char.IsControl))
                throw new ArgumentException($"{option} holds a control character (a newline or tab, say); it would break the scheduler's files");
        static void Plain(string option, string? v, string pattern, string what)
        {
            if (v is not null && !System.Text.RegularExpressions.Regex.IsMatch(v, pattern))
                throw new ArgumentException($"{option} must be {what}, not '{v}'");
        }
        Plain("--job-name", s.Name, @"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "letters, digits, '.', '_' or '-' (at most 64)");
        Plain("--partition", s.Partition, @"^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$", "a partition name (or several, comma-separated)");
        Plain("--namespace", s.Namespace, "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", "a DNS label (a-z, 0-9, -)");
        Plain("--account", s.Account, @"^[A-Za-z0-9._-]+$", "an account name");
        // Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
        Plain("--time", s.Time, @"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$",
            "a Slurm time (minutes, H:MM:SS or D-HH:MM:SS)");
        Plain("--mem", s.Memory, @"^\d+([KMGT]i?|[kmgt])?[Bb]?$", "a size such as 32G, 32Gi or 4096M");
        if (s.GpusPerTask is int g && g < 0) throw new ArgumentException($"--gpus-per-task must be >= 0, not {g}");
        if (s.CpusPerTask is int c && c < 1) throw new ArgumentException($"--cpus-per-task must be at least 1, not {c}");
    }

    /// <summary>A value for an #SBATCH line: plain, or in double quotes (Slurm reads those); a double quote cannot be written there.</summary>
    static string Directive(string option, string value)
    {
        if (value.Contains('"') || value.Any(char.IsControl))
            throw new ArgumentException($"{option} '{value}' cannot be written in an #SBATCH line (a double quote or control character)");
        return value.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? value : $"\"{value}\"";
    }

    /// <summary>train.sbatch, merge.sbatch and submit.sh (the array job, then the merge after every task succeeded).</summary>
    public static IReadOnlyDictionary<string, string> Slurm(SweepGrid grid, IReadOnlyList<string> command, IReadOnlyList<string> trainArgs,
        IReadOnlyList<string> mergeArgs, string workDir, string logDir, SchedulerOptions s)
    {
        string Header(string name, string output, bool gpu)
        {
            var h = new StringBuilder("#!/bin/bash\n");
            void Add(string option) => h.Append("#SBATCH ").Append(option).Append('\n');
            Add($"--job-name={name}");
            Add($"--chdir={Directive("the working folder", workDir)}");
            Add($"--output={Directive("--out", Path.Combine(logDir, output))}");
            if (s.Partition is string p) Add($"--partition={p}");
            if (s.Account is string a) Add($"--account={a}");
            if (s.Time is string t) Add($"--time={t}");
            if (gpu && s.GpusPerTask is int g) Add($"--gpus-per-task={g}");
            if (s.CpusPerTask is int c) Add($"--cpus-per-task={c}");
            if (s.Memory is string m) Add($"--mem={m}");
            return h.ToString();
        }
        string train = Header(s.Name, "%x-%A_%a.out", gpu: true) +
            $"#SBATCH --array=0-{grid.Count - 1}\n" +
            "#SBATCH --ntasks=1\n" +
            "#SBATCH --requeue\n" +          // preemption or scontrol requeue puts the task back; it resumes its cell
            "#SBATCH --open-mode=append\n" + // a requeued task's log continues the first attempt's
            "#SBATCH --signal=B:TERM@120\n" + // two minutes before the time limit: stop at a batch boundary, every epoch kept
            $"# {grid.Count} tasks, index = width's position x {grid.Seeds.Length} + seed's position:\n" +
            string.Concat(grid.Cells.Select(c => $"#   {c}\n")) +
            "set -euo pipefail\n" +
            $"exec {Line(command.Concat(trainArgs))} --task-index \"$SLURM_ARRAY_TASK_ID\"\n";
        string merge = Header(s.Name + "-merge", "%x-%j.out", gpu: false) +
            "set -euo pipefail\n" +
            $"exec {Line(command.Concat(mergeArgs))}\n";
        string submit = "#!/bin/bash\n" +
            "# Submits the array job, then the merge job that runs when every task has succeeded (afterok).\n" +
            "set -euo pipefail\n" +
            "cd \"$(dirname \"$0\")\"\n" +
            "train=$(sbatch --parsable train.sbatch); train=${train%%;*}\n" +
            "merge=$(sbatch --parsable --dependency=afterok:$train --kill-on-invalid-dep=yes merge.sbatch); merge=${merge%%;*}\n" +
            $"echo \"array job $train ({grid.Count} tasks), merge job $merge; logs in \"{Quote(logDir)}\n";
        return new Dictionary<string, string> { ["train.sbatch"] = train, ["merge.sbatch"] = merge, ["submit.sh"] = submit };
    }

    /// <summary>job.yaml (an Indexed Job, one pod per cell), merge.yaml (a Job) and submit.sh (apply, wait, apply).</summary>
    public static IReadOnlyDictionary<string, string> Kubernetes(SweepGrid grid, IReadOnlyList<string>? command, IReadOnlyList<string> trainArgs,
        IReadOnlyList<string> mergeArgs, SchedulerOptions s)
    {
        if (s.Image is null) throw new ArgumentException("a Kubernetes Job needs --image");
        static string J(string v) => JsonSerializer.Serialize(v); // a JSON string is a YAML flow scalar
        static string List(IEnumerable<string> items) => "[" + string.Join(", ", items.Select(J)) + "]";
        string Job(string name, int completions, bool indexed, IReadOnlyList<string> args, bool gpu)
        {
            var y = new StringBuilder();
            y.Append("apiVersion: batch/v1\nkind: Job\nmetadata:\n");
            y.Append($"  name: {J(name)}\n");
            if (s.Namespace is string ns) y.Append($"  namespace: {J(ns)}\n");
            y.Append("  labels:\n    app.kubernetes.io/name: keras-mobilenet\n");
            y.Append($"spec:\n  completions: {completions}\n  parallelism: {completions}\n");
            if (indexed) y.Append("  completionMode: Indexed\n");
            y.Append($"  backoffLimit: {Math.Max(6, 3 * completions)}\n");
            y.Append("  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: keras-mobilenet\n");
            y.Append("    spec:\n      restartPolicy: OnFailure\n");
            y.Append("      terminationGracePeriodSeconds: 120\n"); // SIGTERM, then time to finish a batch and leave
            y.Append("      containers:\n        - name: train\n");
            y.Append($"          image: {J(s.Image)}\n");
            y.Append($"          workingDir: {J(s.MountPath)}\n");
            if (command is not null) y.Append($"          command: {List(command)}\n");
            y.Append($"          args: {List(args)}\n");
            if (gpu && s.GpusPerTask is not null || s.CpusPerTask is not null || s.Memory is not null)
            {
                y.Append("          resources:\n            limits:\n");
                if (gpu && s.GpusPerTask is int gpus) y.Append($"              nvidia.com/gpu: {gpus}\n");
                if (s.CpusPerTask is int c) y.Append($"              cpu: {c}\n");
                if (s.Memory is string m) y.Append($"              memory: {J(m)}\n");
            }
            if (s.VolumeClaim is string claim)
            {
                y.Append($"          volumeMounts:\n            - name: work\n              mountPath: {J(s.MountPath)}\n");
                y.Append($"      volumes:\n        - name: work\n          persistentVolumeClaim:\n            claimName: {J(claim)}\n");
            }
            return y.ToString();
        }
        string header = $"# {grid.Count} pods; JOB_COMPLETION_INDEX = width's position x {grid.Seeds.Length} + seed's position:\n" +
                        string.Concat(grid.Cells.Select(c => $"#   {c}\n"));
        string ns = s.Namespace is string n ? $" -n {Quote(n)}" : "";
        string submit = "#!/bin/bash\n" +
            "# Starts the Indexed Job, waits until every index has completed, then starts the merge Job.\n" +
            "set -euo pipefail\n" +
            "cd \"$(dirname \"$0\")\"\n" +
            "kubectl apply -f job.yaml\n" +
            $"kubectl wait{ns} --for=condition=complete job/{Quote(s.Name)} --timeout=168h\n" +
            "kubectl apply -f merge.yaml\n" +
            $"kubectl wait{ns} --for=condition=complete job/{Quote(s.Name + "-merge")} --timeout=1h\n";
        return new Dictionary<string, string>
        {
            ["job.yaml"] = header + Job(s.Name, grid.Count, indexed: true, trainArgs, gpu: true),
            ["merge.yaml"] = Job(s.Name + "-merge", 1, indexed: false, mergeArgs, gpu: false),
            ["submit.sh"] = submit,
        };
    }

    /// <summary>The grid's own options, as a training or merge command line repeats them.</summary>
    public static List<string> GridArgs(SweepGrid grid) =>
    [
        "--arch", grid.Arch, "--width", string.Join(',', grid.Widths.Select(w => w.ToString(CultureInfo.InvariantCulture))),
        "--seeds", string.Join(',', grid.Seeds.Select(v => v.ToString(CultureInfo.InvariantCulture))), "--out", grid.Root,
    ];
}
