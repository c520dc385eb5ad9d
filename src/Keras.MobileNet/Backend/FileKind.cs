using System.Runtime.InteropServices;

namespace Keras.MobileNet.Backend;

/// <summary>What a path is on disk: nothing, a regular file, a folder, or something else (a device, FIFO or socket).</summary>
public enum PathKind { Missing, Regular, Directory, Special }

/// <summary>
/// The kind of a path, following links. .NET reports a character device or a FIFO as a "Normal" file, so on Unix this
/// asks stat(2) through the runtime's own native shim (libSystem.Native, shipped with every .NET runtime), whose
/// FileStatus begins with two int32 fields, Flags and Mode.
/// </summary>
public static partial class FileKind
{
    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int NativeStat(string path, byte* status);

    const int TypeMask = 0xF000, Dir = 0x4000, Reg = 0x8000;

    public static PathKind Of(string path) => Stat(path).Kind;

    /// <summary>The kind and size in bytes of what <paramref name="path"/> names, links followed.</summary>
    public static unsafe (PathKind Kind, long Size) Stat(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            byte* buffer = stackalloc byte[512]; // FileStatus is about 130 bytes; room to spare for later runtimes
            if (NativeStat(path, buffer) != 0) return (File.Exists(path) || Directory.Exists(path) ? PathKind.Special : PathKind.Missing, 0);
            int mode = *(int*)(buffer + 4);
            long size = *(long*)(buffer + 16); // Flags, Mode, Uid, Gid (4 bytes each), then Size
            return ((mode & TypeMask) switch { Reg => PathKind.Regular, Dir => PathKind.Directory, _ => PathKind.Special }, size);
        }
        if (Directory.Exists(path)) return (PathKind.Directory, 0);
        return File.Exists(path) ? (PathKind.Regular, new FileInfo(path).Length) : (PathKind.Missing, 0);
    }

    /// <summary>Where a write to <paramref name="path"/> lands: the final target of a symbolic link, else the path itself.</summary>
    public static string Resolve(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget is null ? path : File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
        }
        catch (IOException e) { throw new UserError($"{path} is a link that cannot be followed ({e.Message})"); }
    }

    /// <summary>Throws a <see cref="UserError"/> unless <paramref name="path"/> is missing or a regular file (or a link to one).</summary>
    public static void RequireRegularOrMissing(string path)
    {
        var kind = Of(path);
        if (kind is PathKind.Missing or PathKind.Regular) return;
        throw new UserError($"{path} exists and is not a regular file ({(kind == PathKind.Directory ? "a folder" : "a device, FIFO or socket")}); nothing was written to it");
    }
}
