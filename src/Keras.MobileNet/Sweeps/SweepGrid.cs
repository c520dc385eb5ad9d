using System.Globalization;
using Keras.MobileNet.Weights;

namespace Keras.MobileNet.Sweeps;

/// <summary>One (width, seed) cell of a sweep: its task index and its run folder.</summary>
public sealed record SweepCell(int Index, double Width, long Seed, string Folder)
{
    public override string ToString() =>
        $"task {Index}: width {Width.ToString(CultureInfo.InvariantCulture)}, seed {Seed} -> {Folder}";
}

/// <summary>
/// The grid of a sweep: every width times every seed, width-major (index = width's position * seeds + seed's
/// position), so the mapping from a scheduler's task index to a cell depends only on the two lists as given.
/// </summary>
public sealed record SweepGrid(string Arch, double[] Widths, long[] Seeds, string Root)
{
    /// <summary>Environment variables that carry a task's index: Slurm job arrays, Kubernetes Indexed Jobs.</summary>
    public static readonly string[] IndexVariables = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

    public int Count => Widths.Length * Seeds.Length;

    /// <summary>A cell's folder name: stable, so whoever starts a cell again finds its run.</summary>
    public static string CellName(string arch, double width, long seed) =>
        $"{arch.ToLowerInvariant()}-w{width.ToString(CultureInfo.InvariantCulture)}-s{seed.ToString(CultureInfo.InvariantCulture)}";

    public SweepCell Cell(int index)
    {
        if (index < 0 || index >= Count) throw new ArgumentOutOfRangeException(nameof(index), $"task index {index} is outside the grid's 0-{Count - 1}");
        double w = Widths[index / Seeds.Length];
        long s = Seeds[index % Seeds.Length];
        return new SweepCell(index, w, s, Path.Combine(Root, CellName(Arch, w, s)));
    }

    public IEnumerable<SweepCell> Cells => Enumerable.Range(0, Count).Select(Cell);

    /// <summary>
    /// The task index of this process: the option when given, else the first index variable set, else null (all
    /// cells). A value that is not an index in the grid is a user error naming where it came from.
    /// </summary>
    public int? TaskIndex(int? option, Func<string, string?> environment)
    {
        (string Source, string Text)? given = option is int i ? ("--task-index", i.ToString(CultureInfo.InvariantCulture)) : null;
        foreach (var name in IndexVariables)
            if (given is null && environment(name) is { Length: > 0 } v) given = (name, v);
        if (given is not var (source, text)) return null;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index >= Count)
            throw new Backend.UserError($"{source} is {text}, but the grid of {Widths.Length} width(s) x {Seeds.Length} seed(s) has tasks 0-{Count - 1}", 2);
        return index;
    }
}
