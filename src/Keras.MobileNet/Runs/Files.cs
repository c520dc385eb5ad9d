using System.Text.Json;

namespace Keras.MobileNet.Runs;

/// <summary>The run files' JSON: one set of serializer options, atomic writes, and one rule for reading.</summary>
public static class Files
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) }, // "bf16", "channels_last"
    };

    /// <summary>Write to a temp name, then rename: a reader never sees half a file.</summary>
    public static void WriteAtomic(string path, string text) => Backend.AtomicFile.Write(path, tmp => File.WriteAllText(tmp, text));

    /// <summary>An enum as run files and the command line write it ("paper", "bf16", "320").</summary>
    public static string Word(Enum value) => JsonSerializer.Serialize(value, value.GetType(), Json).Trim('"');

    public static void WriteJson<T>(string path, T value) => WriteAtomic(path, JsonSerializer.Serialize(value, Json));
    /// <summary>
    /// Reads a run file, the one rule for all of them: a missing, empty, malformed or inconsistent file is a
    /// <see cref="Backend.UserError"/> naming the file and the field (<paramref name="problem"/> says what is wrong
    /// with a value that parsed), never a runtime message.
    /// </summary>
    public static T ReadJson<T>(string path, Func<T, string?>? problem = null) where T : class
    {
        if (!File.Exists(path)) throw new Backend.UserError($"{path} is missing");
        T? value;
        try { value = JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json); }
        catch (JsonException e) when (e.Message.Contains("missing required properties", StringComparison.Ordinal))
        {
            var names = System.Text.RegularExpressions.Regex.Matches(e.Message.Split("including:")[^1], "'([^']+)'").Select(m => m.Groups[1].Value);
            throw new Backend.UserError($"{path}: {string.Join(", ", names)} is missing");
        }
        catch (JsonException e)
        {
            string why = e.Message.Split(" Path:")[0].Split(". LineNumber")[0].TrimEnd('.');
            if (why.StartsWith("The JSON value could not be converted", StringComparison.Ordinal)) why = "a value of the wrong type";
            string where = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at {e.Path[2..]}";
            throw new Backend.UserError($"{path} is not readable{where} (line {e.LineNumber + 1}): {why}");
        }
        if (value is null) throw new Backend.UserError($"{path} is empty");
        if (problem?.Invoke(value) is string p) throw new Backend.UserError($"{path}: {p}");
        return value;
    }
}
