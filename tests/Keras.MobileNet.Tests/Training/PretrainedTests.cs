using System.Security.Cryptography;
using TorchSharp.PyBridge;

namespace Keras.MobileNet.Tests;

[Category("Slow")] // starts the Train program, a terminal or a server
public class PretrainedTests() : WithTempDir("km-weights")
{

    static MobileNetV2 Net(double width, int classes) => Factories.MobileNetV2(MobileNetV2Spec.Build(Preset.Paper, width, classes));

    /// <summary>Serves <paramref name="bytes"/> on 127.0.0.1 under a torchvision-style name carrying its own SHA-256 prefix.</summary>
    static PublishedWeights Serve(LoopbackServer server, string name, byte[] bytes, string extension)
    {
        string file = $"mobilenet_v2-{Convert.ToHexStringLower(SHA256.HashData(bytes))[..8]}{extension}";
        server.Add(file, bytes);
        return new PublishedWeights(name, file, server.BaseUrl);
    }

    /// <summary>A seeded 1000-class width-1.0 network saved here and served as published weights "test-v1".</summary>
    (string File, PublishedWeights[] List) ServeImageNetLike(LoopbackServer server, int seed)
    {
        string made = Path.Combine(dir, "made.safetensors");
        manual_seed(seed);
        using (var big = Net(1.0, 1000)) Checkpoints.Save(big, made);
        return (made, [Serve(server, "test-v1", File.ReadAllBytes(made), ".safetensors")]);
    }

    [Test]
    public void A_pth_made_by_PyTorch_loads_and_gives_PyTorchs_logits()
    {
        using var net = Net(0.25, 10);
        Assert.That(Pretrained.Load(net, Setup.Fixture("pth/tv_mobilenet_v2_w0.25_c10.pth")), Is.Null, "same classes: no new head");
        var expected = PyTorchUnpickler.UnpickleStateDict(Setup.Fixture("pth/tv_mobilenet_v2_w0.25_c10.expected.pt"));
        using var x = (Tensor)expected["x"]!;
        using var want = (Tensor)expected["logits"]!;
        net.eval();
        using var _ = no_grad();
        using var got = net.forward(x);
        Assert.That((got - want).abs().max().item<float>() / want.abs().max().item<float>(), Is.LessThan(1e-5));
    }

    [Test]
    public void The_safetensors_fixture_loads_through_the_same_path()
    {
        using var net = Net(0.5, 10);
        Assert.That(Pretrained.Load(net, Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors")), Is.Null);
        var saved = TorchSharp.PyBridge.Safetensors.LoadStateDict(Setup.Fixture("tv_mobilenet_v2_w0.5_c10_seed0.safetensors"));
        foreach (var (k, t) in net.state_dict()) Assert.That(t.equal(saved[k]).all().item<bool>(), k);
    }

    [Test]
    public void Another_width_names_the_first_tensor_that_differs()
    {
        using var net = Net(0.5, 10);
        Assert.That(() => Pretrained.Load(net, Setup.Fixture("pth/tv_mobilenet_v2_w0.25_c10.pth")),
            Throws.InstanceOf<UserError>().With.Message.Contains("tensor 'features.0.0.weight' has shape [8, 3, 3, 3], the network needs [16, 3, 3, 3]"));
    }

    [Test]
    public void A_thousand_class_head_is_replaced_for_ten_classes_and_the_rest_is_loaded()
    {
        string file = Path.Combine(dir, "imagenet-like.safetensors");
        manual_seed(3);
        using (var big = Net(0.25, 1000)) Checkpoints.Save(big, file);
        manual_seed(4);
        using var net = Net(0.25, 10);
        var headBefore = net.state_dict()["classifier.1.weight"].clone();
        string? note = Pretrained.Load(net, file);
        Assert.That(note, Does.Contain("has 1000 classes, this network 10: the classifier is new"));
        var saved = TorchSharp.PyBridge.Safetensors.LoadStateDict(file);
        foreach (var (k, t) in net.state_dict().Where(e => !e.Key.StartsWith("classifier")))
            Assert.That(t.equal(saved[k]).all().item<bool>(), k);
        Assert.That(net.state_dict()["classifier.1.weight"].equal(headBefore).all().item<bool>(), "the new head keeps its initialisation");
    }

    [Test]
    public void Build_gives_torchvisions_imagenet_network_with_its_class_names_and_preprocessing()
    {
        using var server = new LoopbackServer();
        var (made, list) = ServeImageNetLike(server, seed: 9);
        var (card, net) = Pretrained.Build("test-v1", dir, published: list);
        using var _ = net;
        Assert.That(card.ClassNames, Has.Length.EqualTo(1000));
        Assert.That((card.ClassNames[0], card.ClassNames[999]), Is.EqualTo(("tench", "toilet tissue")));
        Assert.That((card.Mean, card.Std, card.ImageSize), Is.EqualTo((Pretrained.ImageNetMean, Pretrained.ImageNetStd, 224)));
        var saved = TorchSharp.PyBridge.Safetensors.LoadStateDict(made);
        Assert.That(net.state_dict()["classifier.1.weight"].equal(saved["classifier.1.weight"]).all().item<bool>());
        Assert.That(() => Pretrained.Build(made, dir), Throws.InstanceOf<UserError>().With.Message.Contains("--checkpoint RUN"));
    }

    [Test]
    public void The_imagenet_network_is_cut_to_a_folders_classes_for_evaluate()
    {
        using var server = new LoopbackServer();
        var (made, list) = ServeImageNetLike(server, seed: 11);
        // Imagenette's ids and plain ImageNet names, in the folder's order.
        var (card, net) = Pretrained.BuildFor("test-v1", ["n03888257", "tench", "golf_ball"], dir, published: list);
        using var _ = net;
        Assert.That(card.ClassNames, Is.EqualTo(new[] { "parachute", "tench", "golf ball" }));
        Assert.That(card.ClassFolders, Is.EqualTo(new[] { "n03888257", "tench", "golf_ball" }));
        var saved = TorchSharp.PyBridge.Safetensors.LoadStateDict(made);
        using var rows = saved["classifier.1.weight"].index_select(0, tensor(new long[] { 701, 0, 574 }));
        Assert.That(net.state_dict()["classifier.1.weight"].equal(rows).all().item<bool>(), "rows 701, 0 and 574 of the 1000");
        Assert.That(net.state_dict()["features.18.0.weight"].equal(saved["features.18.0.weight"]).all().item<bool>());
        Assert.That(() => Pretrained.BuildFor("test-v1", ["tench", "unicorn"], dir, published: list),
            Throws.InstanceOf<UserError>().With.Message.Contains("class folder 'unicorn' is not an ImageNet class"));
    }

    [Test]
    public void The_preprocessing_goes_with_the_weights()
    {
        string lone = Path.Combine(dir, "lone.pth");
        File.WriteAllBytes(lone, [1]);
        Assert.That(Pretrained.Preprocessing("imagenet1k-v2", lone), Is.EqualTo((Pretrained.ImageNetMean, Pretrained.ImageNetStd)));
        Assert.That(Pretrained.Preprocessing(lone, lone), Is.EqualTo((Pretrained.ImageNetMean, Pretrained.ImageNetStd)), "torchvision's convention");
        float[] mean = [0.1f, 0.2f, 0.3f], std = [0.4f, 0.5f, 0.6f];
        Files.WriteJson(Path.Combine(dir, "model.json"), new ModelCard(Preset.Paper, 0.25, 10, [.. Enumerable.Range(0, 10).Select(i => $"c{i}")],
            [.. Enumerable.Range(0, 10).Select(i => $"c{i}")], 64, mean, std, 0.2));
        Assert.That(Pretrained.Preprocessing(lone, lone), Is.EqualTo((mean, std)), "a run's weights keep the run's preprocessing");
    }

    [Test]
    public void Published_weights_are_downloaded_once_and_checked_against_the_hash_in_their_name()
    {
        var payload = RandomNumberGenerator.GetBytes(4096);
        using var server = new LoopbackServer();
        var good = Serve(server, "test-v1", payload, ".pth");
        server.Add("mobilenet_v2-00000000.pth", payload);
        var bad = new PublishedWeights("test-bad", "mobilenet_v2-00000000.pth", server.BaseUrl);
        string file = Pretrained.Resolve("test-v1", dir, published: [good]);
        Assert.That(file, Is.EqualTo(Path.Combine(dir, "weights", good.FileName)));
        Assert.That(File.ReadAllBytes(file), Is.EqualTo(payload));
        Assert.That(Pretrained.Resolve("test-v1", dir, published: [good]), Is.EqualTo(file));
        Assert.That(server.Requests, Is.EqualTo(1), "the second call finds the file");
        Assert.That(() => Pretrained.Resolve("test-bad", dir, published: [bad]),
            Throws.InstanceOf<UserError>().With.Message.Contains("checksum mismatch").And.Message.Contains("expected 00000000..."));
        Assert.That(Directory.GetFiles(Path.Combine(dir, "weights")).Select(Path.GetFileName), Is.EqualTo(new[] { good.FileName }), "nothing half-written");
        Assert.That(() => Pretrained.Resolve("imagenet1k-v3", dir), Throws.InstanceOf<UserError>().With.Message.Contains("imagenet1k-v1, imagenet1k-v2"));
        Assert.That(Pretrained.Published.Select(p => p.HashPrefix), Is.EqualTo(new[] { "b0353104", "7ebf99e0" }));
    }
}
