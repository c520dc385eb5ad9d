using System.Buffers.Binary;
using System.Text;

namespace Keras.MobileNet.Backend;

/// <summary>
/// Marks one symbol-version requirement of an ELF64 shared library as weak.
/// TorchSharp 0.107's libLibTorchSharp.so asks for GLIBCXX_3.4.32 (GCC 13) only because GCC 13 emits a bare
/// reference to <c>std::ios_base_library_init</c>; no relocation uses it. With VER_FLG_WEAK set on that
/// Vernaux entry the dynamic loader accepts an older libstdc++ (Debian 12 has 3.4.30).
/// </summary>
public static class ElfVersionPatch
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>Offsets of the vna_flags fields whose version name equals <paramref name="version"/>.</summary>
    public static IReadOnlyList<(long FlagsOffset, ushort Flags)> FindRequirement(ReadOnlySpan<byte> elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only little-endian ELF64 is supported");

        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        var found = new List<(long, ushort)>();
        for (int i = 0; i < shnum; i++)
        {
            var sh = elf.Slice(checked((int)(shoff + (long)i * shentsize)), shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var strSh = elf.Slice(checked((int)(shoff + (long)link * shentsize)), shentsize);
            long strOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(strSh[0x18..]);

            long need = offset;
            while (true)
            {
                // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
                var vn = elf[(int)need..];
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(vn[2..]);
                long aux = need + BinaryPrimitives.ReadUInt32LittleEndian(vn[8..]);
                for (int a = 0; a < cnt; a++)
                {
                    // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
                    var va = elf[(int)aux..];
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(va[4..]);
                    long name = strOffset + BinaryPrimitives.ReadUInt32LittleEndian(va[8..]);
                    if (ReadCString(elf, name) == version) found.Add((aux + 4, flags));
                    uint next = BinaryPrimitives.ReadUInt32LittleEndian(va[12..]);
                    if (next == 0) break;
                    aux += next;
                }
                uint vnNext = BinaryPrimitives.ReadUInt32LittleEndian(vn[12..]);
                if (vnNext == 0) break;
                need += vnNext;
            }
        }
        return found;
    }

    static string ReadCString(ReadOnlySpan<byte> data, long at)
    {
        var s = data[(int)at..];
        int end = s.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? s : s[..end]);
    }

    /// <summary>
    /// Sets VER_FLG_WEAK on the requirement for <paramref name="version"/> in the file at <paramref name="path"/>.
    /// Writes a temp file and renames it over the original, so a concurrent loader never sees half a file.
    /// Returns true when the file changed.
    /// </summary>
    public static bool MakeWeak(string path, string version)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var entries = FindRequirement(bytes, version);
        if (entries.All(e => (e.Flags & VerFlgWeak) != 0)) return false;
        foreach (var (at, flags) in entries)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan((int)at), (ushort)(flags | VerFlgWeak));
        AtomicFile.Write(path, tmp =>
        {
            File.WriteAllBytes(tmp, bytes);
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(tmp, File.GetUnixFileMode(path));
        });
        return true;
    }
}
