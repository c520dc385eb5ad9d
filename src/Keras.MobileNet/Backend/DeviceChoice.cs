using System.Text.Json;
using System.Text.Json.Serialization;

namespace Keras.MobileNet.Backend;

public enum DeviceKind { Auto, Cpu, Cuda }

/// <summary>
/// auto (CUDA when present, like the notebook's get_device(["cuda", "cpu"])), cpu, cuda, or cuda:N. Parsed by the
/// command line; written in run files as the words the user typed.
/// </summary>
[JsonConverter(typeof(DeviceChoiceJson))]
public readonly record struct DeviceChoice(DeviceKind Kind, int? Index = null)
{
    public static readonly DeviceChoice Auto = new(DeviceKind.Auto);
    public static readonly DeviceChoice Cpu = new(DeviceKind.Cpu);
    public override string ToString() => Kind.ToString().ToLowerInvariant() + (Index is int i ? $":{i}" : "");
}

sealed class DeviceChoiceJson : JsonConverter<DeviceChoice>
{
    public override DeviceChoice Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string text = reader.GetString() ?? "";
        int colon = text.IndexOf(':');
        string kind = colon < 0 ? text : text[..colon];
        if (!Enum.TryParse<DeviceKind>(kind, ignoreCase: true, out var k)) throw new JsonException($"device '{text}' is not auto, cpu, cuda or cuda:N");
        return new DeviceChoice(k, colon < 0 ? null : int.TryParse(text[(colon + 1)..], out int i) ? i : throw new JsonException($"device '{text}'"));
    }

    public override void Write(Utf8JsonWriter writer, DeviceChoice value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
