using Google.Protobuf;
using Keras.MobileNet.Backend;

namespace Keras.MobileNet.Runs;

/// <summary>
/// TensorBoard event files, one per epoch (events.out.tfevents.NNNN.keras-mobilenet), each written whole under a
/// temporary name that TensorBoard ignores and renamed into place. Writing an epoch again replaces its file, so a
/// resumed run never shows an epoch twice, and TensorBoard, which reads the files in name order, follows a live run.
/// </summary>
public static class EventFile
{
    public static string Name(int epoch) => $"events.out.tfevents.{epoch:D4}.keras-mobilenet";

    /// <summary>The TensorBoard tag of a Keras log key: val_x as val/x, the rest as train/x.</summary>
    public static string Tag(string key) => key.StartsWith("val_", StringComparison.Ordinal) ? $"val/{key[4..]}" : $"train/{key}";

    /// <summary>The scalars of one history row, under the tags the log keys get.</summary>
    public static IEnumerable<(string Tag, double Value)> Scalars(HistoryRow r)
    {
        var keys = new (string, double?)[]
        {
            ("loss", r.TrainLoss), ("accuracy", r.TrainAccuracy), ("lr", r.Lr), ("seconds", r.Seconds),
            ("val_loss", r.ValLoss), ("val_accuracy", r.ValAccuracy), ("val_top5", r.ValTop5),
        };
        return keys.Where(k => k.Item2 is not null).Select(k => (Tag(k.Item1), k.Item2!.Value));
    }

    /// <summary>
    /// Writes epoch <paramref name="step"/>'s finite scalars to DIR/events.out.tfevents.NNNN.keras-mobilenet (the temp
    /// file beside it is named .events-NNNN.PID.tmp: no "tfevents" in it, so TensorBoard never reads half a file).
    /// </summary>
    public static void Write(string dir, int step, IEnumerable<(string Tag, double Value)> scalars)
    {
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        AtomicFile.Write(Path.Combine(dir, Name(step)), tmp =>
        {
            using var f = new FileStream(tmp, FileMode.Create, FileAccess.Write);
            WriteRecord(f, new Tensorboard.Event { WallTime = now, FileVersion = "brain.Event:2" }.ToByteArray());
            foreach (var (tag, value) in scalars.Where(s => double.IsFinite(s.Value)))
            {
                var summary = new Tensorboard.Summary();
                summary.Value.Add(new Tensorboard.Summary.Types.Value { Tag = tag, SimpleValue = (float)value });
                WriteRecord(f, new Tensorboard.Event { WallTime = now, Step = step, Summary = summary }.ToByteArray());
            }
        }, tempPath: Path.Combine(dir, $".events-{step:D4}.{Environment.ProcessId}.tmp"));
    }

    /// <summary>A TFRecord: length, its masked CRC-32C, the bytes, their masked CRC-32C (little-endian).</summary>
    static void WriteRecord(Stream s, byte[] data)
    {
        var length = BitConverter.GetBytes((ulong)data.LongLength);
        s.Write(length);
        s.Write(BitConverter.GetBytes(MaskedCrc(length)));
        s.Write(data);
        s.Write(BitConverter.GetBytes(MaskedCrc(data)));
    }

    /// <summary>CRC-32C (Castagnoli), as TFRecord and Snappy use it.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data) crc = System.Numerics.BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    /// <summary>Reads back an event file's (step, tag, value) scalars, checking every record's CRCs.</summary>
    public static List<(long Step, string Tag, float Value)> Read(string path)
    {
        var result = new List<(long, string, float)>();
        var bytes = File.ReadAllBytes(path);
        for (int at = 0; at < bytes.Length;)
        {
            if (bytes.Length - at < 12) throw new InvalidDataException($"{path}: a record is cut at byte {at}");
            var lengthBytes = bytes.AsSpan(at, 8);
            long length = BitConverter.ToInt64(lengthBytes);
            if (BitConverter.ToUInt32(bytes, at + 8) != MaskedCrc(lengthBytes) || length < 0 || length > bytes.Length - at - 16)
                throw new InvalidDataException($"{path}: bad record length at byte {at}");
            var data = bytes.AsSpan(at + 12, (int)length);
            if (BitConverter.ToUInt32(bytes, at + 12 + (int)length) != MaskedCrc(data))
                throw new InvalidDataException($"{path}: bad record checksum at byte {at}");
            var e = Tensorboard.Event.Parser.ParseFrom(data.ToArray());
            if (e.Summary is { } s)
                foreach (var v in s.Value) result.Add((e.Step, v.Tag, v.SimpleValue));
            at += 16 + (int)length;
        }
        return result;
    }
}
