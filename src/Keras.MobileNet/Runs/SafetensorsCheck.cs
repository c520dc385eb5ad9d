using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;

namespace Keras.MobileNet.Runs;

public static partial class Checkpoints
{
    static readonly Dictionary<string, int> DtypeBytes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>
    /// A checkpoint is untrusted input: its 8-byte header length, the JSON header and every tensor's byte range are
    /// checked against the file's size before anything is allocated from them (a 10-byte file claiming a 2 GB header
    /// made the reader abort the process).
    /// </summary>
    public static void CheckSafetensors(string path)
    {
        long size = new FileInfo(path).Length;
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[8];
        if (size < 8 || f.Read(head) != 8) throw Bad(path, $"{size} bytes is too short for a safetensors header");
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head);
        if (n == 0 || n > (ulong)(size - 8) || n > 100_000_000) throw Bad(path, $"its header claims {n:N0} bytes, the file has {size - 8:N0} after the length");
        var json = new byte[n];
        f.ReadExactly(json);
        long data = size - 8 - (long)n;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad(path, $"its header is not JSON ({e.Message.Split('\n')[0]})"); }
        var ranges = new List<(long Start, long End, string Name)>();
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "its header is not a JSON object");
            foreach (var t in doc.RootElement.EnumerateObject())
            {
                if (t.Name == "__metadata__") continue;
                var v = t.Value;
                if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
                    || !DtypeBytes.TryGetValue(dt.GetString()!, out int width))
                    throw Bad(path, $"tensor '{t.Name}' has no known dtype");
                if (!v.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
                    || !v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
                    throw Bad(path, $"tensor '{t.Name}' lacks shape or data_offsets");
                long count = 1;
                foreach (var d in shape.EnumerateArray())
                    if (!d.TryGetInt64(out long dim) || dim < 0 || (count = dim == 0 ? 0 : count > long.MaxValue / Math.Max(dim, 1) ? -1 : count * dim) < 0)
                        throw Bad(path, $"tensor '{t.Name}' has an invalid shape");
                if (!off[0].TryGetInt64(out long a) || !off[1].TryGetInt64(out long b) || a < 0 || b < a || b > data || b - a != count * width)
                    throw Bad(path, $"tensor '{t.Name}' has data_offsets outside the file or not matching its shape");
                if (b > a) ranges.Add((a, b, t.Name));
            }
        }
        ranges.Sort((x, y) => x.Start.CompareTo(y.Start));
        for (int i = 1; i < ranges.Count; i++)
            if (ranges[i].Start < ranges[i - 1].End)
                throw Bad(path, $"tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' share bytes (overlapping data_offsets)");
    }

    static Backend.UserError Bad(string path, string why) => new($"{path} is not a readable safetensors checkpoint: {why}");
}
