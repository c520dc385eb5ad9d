using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

public class CheckpointFileTests
{
    static byte[] File(ulong headerLength, string header, int dataBytes = 0)
    {
        var h = System.Text.Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, headerLength);
        h.CopyTo(b, 8);
        return b;
    }

    static IEnumerable<TestCaseData> Hostile()
    {
        yield return new TestCaseData(File(2_000_000_000, "{}"), "claims 2,000,000,000 bytes").SetName("Header_longer_than_the_file");
        yield return new TestCaseData(new byte[5], "too short").SetName("Shorter_than_a_length");
        yield return new TestCaseData(File(4, "nope"), "not JSON").SetName("Header_not_json");
        string t = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000,1000],\"data_offsets\":[0,4000000]}}";
        yield return new TestCaseData(File((ulong)t.Length, t, 16), "tensor 'w' has data_offsets outside the file").SetName("Tensor_past_the_end");
        string q = "{\"w\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        yield return new TestCaseData(File((ulong)q.Length, q, 8), "tensor 'w' has no known dtype").SetName("Unknown_dtype");
        string m = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        yield return new TestCaseData(File((ulong)m.Length, m, 8), "not matching its shape").SetName("Offsets_not_matching_shape");
    }

    [TestCaseSource(nameof(Hostile))]
    public void A_hostile_safetensors_file_is_a_clear_error_before_any_allocation(byte[] bytes, string why)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("km-st").FullName, "x.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2));
        Assert.That(() => Checkpoints.Load(net, path), Throws.InstanceOf<Keras.MobileNet.Backend.UserError>()
            .With.Message.StartsWith($"{path} is not a readable safetensors checkpoint: ").And.Message.Contains(why));
    }

    [Test]
    public void A_real_checkpoint_passes_the_check()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("km-st").FullName, "ok.safetensors");
        using var net = Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, 0.25, 2));
        Checkpoints.Save(net, path);
        Assert.That(() => Checkpoints.CheckSafetensors(path), Throws.Nothing);
        Assert.That(() => Checkpoints.CheckSafetensors(Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors")), Throws.Nothing, "torchvision's own file");
    }
}
