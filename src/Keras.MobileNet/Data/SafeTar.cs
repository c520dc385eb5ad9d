using System.Formats.Tar;
using System.IO.Compression;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Data;

/// <summary>
/// Extracts .tgz archives with .NET's tar and gzip readers under the rules of Python tarfile's "data" filter:
/// no absolute names, no ".." escaping the target, links only to places inside it, no devices or FIFOs, no
/// special permission bits. Everything lands in a temp folder that is renamed into place only when complete.
/// </summary>
public static class SafeTar
{
    /// <summary>Extracts <paramref name="archive"/> into <paramref name="destination"/> (which must not exist yet).</summary>
    public static void ExtractTgz(string archive, string destination)
    {
        string dest = Path.GetFullPath(destination);
        if (Directory.Exists(dest)) throw new UserError($"{dest} already exists");
        string parent = Path.GetDirectoryName(dest)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".extract-{Path.GetFileName(dest)}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            using (var file = File.OpenRead(archive))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
            using (var tar = new TarReader(gz))
            {
                TarEntry? entry;
                while ((entry = tar.GetNextEntry()) is not null) ExtractEntry(entry, temp, archive);
            }
            Directory.Move(temp, dest);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            TryDelete(temp);
            throw new UserError($"{archive} is not a readable .tgz archive: {e.Message}");
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The full path inside <paramref name="root"/> for an entry name, or an error naming the entry.</summary>
    public static string Resolve(string root, string name, string archive)
    {
        string n = name.Replace('\\', '/');
        if (n.StartsWith('/') || Path.IsPathRooted(n) || (n.Length > 1 && n[1] == ':'))
            throw new UserError($"{archive}: entry '{name}' has an absolute path; refusing to extract");
        string full = Path.GetFullPath(Path.Combine(root, n));
        if (!IsInside(root, full))
            throw new UserError($"{archive}: entry '{name}' points outside the target folder; refusing to extract");
        return full;
    }

    static bool IsInside(string root, string full)
    {
        string r = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return (full + Path.DirectorySeparatorChar).StartsWith(r, StringComparison.Ordinal);
    }

    static void ExtractEntry(TarEntry entry, string root, string archive)
    {
        string target = Resolve(root, entry.Name, archive);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                Directory.CreateDirectory(target);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using (var output = File.Create(target)) entry.DataStream?.CopyTo(output);
                if (!OperatingSystem.IsWindows())
                    File.SetUnixFileMode(target, (UnixFileMode)((int)entry.Mode & 0x1FF) | UnixFileMode.UserRead | UnixFileMode.UserWrite); // drop setuid/setgid/sticky
                break;
            case TarEntryType.SymbolicLink or TarEntryType.HardLink:
            {
                string link = entry.LinkName.Replace('\\', '/');
                if (link.StartsWith('/') || Path.IsPathRooted(link))
                    throw new UserError($"{archive}: link '{entry.Name}' -> '{entry.LinkName}' is absolute; refusing to extract");
                // Symlink targets are relative to the link's folder, hard-link targets to the archive root.
                string baseDir = entry.EntryType == TarEntryType.SymbolicLink ? Path.GetDirectoryName(target)! : root;
                string resolved = Path.GetFullPath(Path.Combine(baseDir, link));
                if (!IsInside(root, resolved))
                    throw new UserError($"{archive}: link '{entry.Name}' -> '{entry.LinkName}' points outside the target folder; refusing to extract");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (entry.EntryType == TarEntryType.SymbolicLink) File.CreateSymbolicLink(target, link);
                else File.Copy(resolved, target);
                break;
            }
            case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes:
                break;
            default:
                throw new UserError($"{archive}: entry '{entry.Name}' is a {entry.EntryType}; refusing to extract (only files, folders and inside links are)");
        }
    }

    static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); } catch (IOException) { }
    }
}
