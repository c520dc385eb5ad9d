using System.Formats.Tar;
using System.IO.Compression;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Downloads;

/// <summary>
/// Extracts .tgz archives with .NET's tar and gzip readers under the rules of Python tarfile's "data" filter, judged
/// against the disk and not only the names: no absolute names, no ".." escaping the target, nothing written through a
/// link (every folder on an entry's way and the entry itself must not be a link), links that stay inside the target
/// once every link of the archive is made, hard links only to regular files, no devices or FIFOs, file modes without
/// group/other write or setuid/setgid/sticky. Everything lands in a temp folder renamed into place only when complete.
/// </summary>
public static class SafeTar
{
    /// <summary>
    /// Extracts <paramref name="archive"/> into <paramref name="destination"/> (which must not exist yet). With
    /// <paramref name="only"/>, only that top folder's entries are extracted, and its contents become the destination:
    /// links are judged where they will live, not against a larger staging folder.
    /// </summary>
    public static void ExtractTgz(string archive, string destination, string? only = null)
    {
        string dest = Path.GetFullPath(destination);
        if (Directory.Exists(dest)) throw new UserError($"{dest} already exists");
        string parent = Path.GetDirectoryName(dest)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".extract-{Path.GetFileName(dest)}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var links = new List<(string Path, TarEntry Entry)>();
            using (var file = File.OpenRead(archive))
            using (var gz = new GZipStream(file, CompressionMode.Decompress))
            using (var tar = new TarReader(gz))
            {
                TarEntry? entry;
                while ((entry = tar.GetNextEntry()) is not null) ExtractEntry(entry, temp, archive, only, links);
            }
            // A link made early can be turned outward by a later one (a -> b/../x, then b -> .): judge them all at the end.
            string realRoot = RealPath(temp);
            foreach (var (path, entry) in links)
                if (!IsInside(realRoot, RealPath(path)))
                    throw Refuse(archive, $"link '{entry.Name}' -> '{entry.LinkName}' points outside the target folder once the archive's other links are made");
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

    static UserError Refuse(string archive, string why) => new($"{archive}: {why}; refusing to extract");

    /// <summary>The full path inside <paramref name="root"/> for an entry name, or an error naming the entry.</summary>
    public static string Resolve(string root, string name, string archive)
    {
        string n = name.Replace('\\', '/');
        if (n.StartsWith('/') || Path.IsPathRooted(n) || (n.Length > 1 && n[1] == ':'))
            throw Refuse(archive, $"entry '{name}' has an absolute path");
        string full = Path.GetFullPath(Path.Combine(root, n));
        if (!IsInside(root, full)) throw Refuse(archive, $"entry '{name}' points outside the target folder");
        return full;
    }

    static bool IsInside(string root, string full)
    {
        string r = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return (full + Path.DirectorySeparatorChar).StartsWith(r, StringComparison.Ordinal);
    }

    /// <summary>The entry's name below <paramref name="only"/>, or null when it lies elsewhere (then it is skipped).</summary>
    static string? Below(string name, string? only)
    {
        string n = name.Replace('\\', '/');
        if (only is null) return n;
        string top = only.TrimEnd('/') + "/";
        return n.StartsWith(top, StringComparison.Ordinal) && n.Length > top.Length ? n[top.Length..] : null;
    }

    /// <summary>
    /// Where a path really leads, as the kernel would walk it: every existing link on the way is followed (relative
    /// targets from the link's folder), ".." is taken after the links before it; missing parts are taken as written.
    /// </summary>
    public static string RealPath(string path)
    {
        string absolute = Path.IsPathRooted(path) ? path : Path.Combine(Directory.GetCurrentDirectory(), path);
        var pending = new Stack<string>(absolute.Split('/').Reverse());
        string current = "/";
        int hops = 0;
        while (pending.TryPop(out var part))
        {
            if (part is "" or ".") continue;
            if (part == "..") { current = Path.GetDirectoryName(current) ?? "/"; continue; }
            string next = Path.Combine(current, part);
            if (new FileInfo(next).LinkTarget is { } target)
            {
                if (++hops > 40) throw new IOException($"{path}: too many levels of links");
                if (target.StartsWith('/')) current = "/";
                foreach (var t in target.Split('/').Reverse()) pending.Push(t);
                continue;
            }
            current = next;
        }
        return current;
    }

    /// <summary>Refuses an entry whose folders, or which itself, is a link on disk: nothing is written through a link.</summary>
    static void NoLinkOnTheWay(string root, string target, TarEntry entry, string archive)
    {
        string rel = Path.GetRelativePath(root, target);
        string current = root;
        foreach (var part in rel.Split(Path.DirectorySeparatorChar))
        {
            current = Path.Combine(current, part);
            if (new FileInfo(current).LinkTarget is not null)
                throw Refuse(archive, $"entry '{entry.Name}' would be written through the link '{Path.GetRelativePath(root, current)}'");
        }
    }

    static void ExtractEntry(TarEntry entry, string root, string archive, string? only, List<(string, TarEntry)> links)
    {
        if (entry.EntryType is TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes) return;
        string? name = Below(entry.Name, only);
        if (name is null) return;
        string target = Resolve(root, name, archive);
        if (target == Path.GetFullPath(root)) return; // "./" or the top folder itself
        NoLinkOnTheWay(root, target, entry, archive);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                Directory.CreateDirectory(target);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using (var output = new FileStream(target, FileMode.Create, FileAccess.Write)) entry.DataStream?.CopyTo(output);
                SetMode(target, entry.Mode);
                break;
            case TarEntryType.SymbolicLink:
            {
                string link = entry.LinkName.Replace('\\', '/');
                if (link.StartsWith('/') || Path.IsPathRooted(link))
                    throw Refuse(archive, $"link '{entry.Name}' -> '{entry.LinkName}' is absolute");
                // Relative to the link's folder, as written and as it really is on disk.
                string folder = Path.GetDirectoryName(target)!;
                if (!IsInside(root, Path.GetFullPath(Path.Combine(folder, link))) || !IsInside(RealPath(root), RealPath(Path.Combine(folder, link))))
                    throw Refuse(archive, $"link '{entry.Name}' -> '{entry.LinkName}' points outside the target folder");
                Directory.CreateDirectory(folder);
                File.CreateSymbolicLink(target, link);
                links.Add((target, entry));
                break;
            }
            case TarEntryType.HardLink:
            {
                // Hard-link targets are archive names: a regular file this archive already extracted, never a link.
                string? sourceName = Below(entry.LinkName, only);
                string source = sourceName is null
                    ? throw Refuse(archive, $"hard link '{entry.Name}' -> '{entry.LinkName}' points outside the extracted folder")
                    : Resolve(root, sourceName, archive);
                NoLinkOnTheWay(root, source, entry, archive);
                if (!File.Exists(source))
                    throw Refuse(archive, $"hard link '{entry.Name}' -> '{entry.LinkName}' does not name a file extracted before it");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(source, target, overwrite: true);
                SetMode(target, entry.Mode);
                break;
            }
            default:
                throw Refuse(archive, $"entry '{entry.Name}' is a {entry.EntryType} (only files, folders and inside links are extracted)");
        }
    }

    /// <summary>The data filter's modes: no group/other write, no setuid/setgid/sticky, always readable and writable by the owner.</summary>
    static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, (UnixFileMode)((int)mode & 0b111_101_101) | UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); } catch (IOException) { }
    }
}
