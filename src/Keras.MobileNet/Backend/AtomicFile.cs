namespace Keras.MobileNet.Backend;

/// <summary>Files that appear whole or not at all: written under a temporary name, then renamed over the target.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> with a temporary path beside <paramref name="path"/> (unique to this process,
    /// ending in <paramref name="tempSuffix"/>; or <paramref name="tempPath"/>, where readers of the folder must not see the
    /// target's name in it), then renames it over <paramref name="path"/>. If writing fails the temporary file is
    /// removed, so a reader never sees half a file and nothing half-written is left behind.
    /// </summary>
    /// <remarks>
    /// A symbolic link is written through (the file it points at is replaced and the link stays); a target that exists
    /// and is not a regular file (a folder, a device such as /dev/null, a FIFO) is refused before anything is written.
    /// </remarks>
    public static void Write(string path, Action<string> write, string tempSuffix = ".tmp", string? tempPath = null)
    {
        path = FileKind.Resolve(path);
        FileKind.RequireRegularOrMissing(path);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string tmp = tempPath ?? $"{path}.{Environment.ProcessId}{tempSuffix}";
        try
        {
            write(tmp);
            FaultPoints.Hit();
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }

    static readonly System.Text.RegularExpressions.Regex TempName = new(@"^(?<name>.+)\.(?<pid>\d+)\.tmp(\.\w+)?$");

    /// <summary>
    /// The file name a temp name of <see cref="Write"/> stands for, and the process that wrote it (NAME.PID.tmp, or with
    /// a suffix such as .tmp.png); null for any other name. What a clean-up may remove is decided from this, never from a
    /// bare "*.tmp".
    /// </summary>
    public static (string Target, int Pid)? TempOf(string fileName) =>
        TempName.Match(fileName) is { Success: true } m && int.TryParse(m.Groups["pid"].Value, out int pid) ? (m.Groups["name"].Value, pid) : null;
}
