using System.Text.Json;

namespace Keras.MobileNet.Tests;

/// <summary>options.json is a versioned schema, not whatever the C# record's properties are called today.</summary>
public sealed class OptionsFileTests
{
    /// <summary>The names of options-1. A change here is a new schema: bump TrainOptions.Format and say what readers do with the old one.</summary>
    static readonly string[] Schema =
    [
        "format", "widths", "arch", "dataset", "size", "data", "base_url", "weights_base_url", "image_size", "epochs", "batch_size", "lr", "min_lr",
        "weight_decay", "label_smoothing", "schedule", "warmup_epochs", "early_stopping_patience", "seed", "seeds", "task_index", "device",
        "precision", "memory_format", "train_cache", "augment_on", "cache_device", "inference_engine", "latency", "workers", "in_memory", "out", "resume", "reuse_out", "tensor_board", "dropout", "weights",
        "unfreeze_epoch", "unfreeze_from", "bn_mode", "fine_tune_lr", "estimate_only", "floor_lr", "phase_two_lr",
    ];

    [Test]
    public void The_file_s_names_are_the_schema_s_whatever_the_properties_are_called()
    {
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new TrainOptions(), Files.Json));
        Assert.That(doc.RootElement.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(Schema));
        Assert.That(doc.RootElement.GetProperty("format").GetString(), Is.EqualTo("keras-mobilenet/options-1"));
        // Every property carries its name in the file explicitly: a rename of the C# property cannot move it.
        var unpinned = typeof(TrainOptions).GetProperties().Where(p => p.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonPropertyNameAttribute), false).Length == 0
            && p.Name != "EqualityContract").Select(p => p.Name);
        Assert.That(unpinned, Is.Empty);
    }

    [Test]
    public void A_file_from_before_the_version_reads_with_its_values()
    {
        var o = JsonSerializer.Deserialize<TrainOptions>("""{"widths":[0.5],"arch":"notebook","data":"/d","lr":0.003,"early_stopping_patience":4}""", Files.Json)!;
        Assert.That((o.Widths.Single(), o.Arch, o.Data, o.Lr, o.EarlyStoppingPatience), Is.EqualTo((0.5, Preset.Notebook, "/d", 0.003, 4)));
    }
}
