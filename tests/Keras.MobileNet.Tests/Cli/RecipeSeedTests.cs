using System.Text.Json;
using Keras.MobileNet.Cli;

namespace Keras.MobileNet.Tests;

/// <summary>The seed, through the library's own loading and building, and the transforms against torchvision.</summary>
public sealed class RecipeSeedTests() : WithTempDir("km-seed-")
{
    static TrainOptions Parse(params string[] args) => TrainCommand.Parse(args).Options;

    [Test]
    public void The_seed_sets_the_data_order_each_epoch_a_permutation_and_the_initialisation()
    {
        Synthetic.ShapesFolder(dir, classes: 2, trainPerClass: 10, valPerClass: 2, size: 32);
        LoadedData Load(long seed) => TrainingData.Load(Parse("--dataset", "folder", "--data", dir, "--image-size", "32", "--batch-size", "4",
            "--workers", "1", "--seed", $"{seed}"), CPU, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var (a, again, b) = (Load(3).Train, Load(3).Train, Load(4).Train);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            Assert.That(a.Order(epoch).OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 20)), "a permutation");
            Assert.That(again.Order(epoch), Is.EqualTo(a.Order(epoch)));
            Assert.That(b.Order(epoch), Is.Not.EqualTo(a.Order(epoch)), "another seed, another order");
        }
        Assert.That(a.Order(1), Is.Not.EqualTo(a.Order(0)), "each epoch its own order");
        Assert.That(Load(5).Train.WithSeed(3).Order(2), Is.EqualTo(a.Order(2)), "a sweep cell's seed replaces the loader's");

        float[] Init(long seed)
        {
            var o = Parse("--seed", $"{seed}");
            using var m = SingleRun.Build(o, MobileNetV2Spec.Build(o.Arch, 0.25, 2), CPU);
            return m.Network.parameters().First().data<float>().ToArray();
        }
        Assert.That(Init(3), Is.EqualTo(Init(3)));
        Assert.That(Init(4), Is.Not.EqualTo(Init(3)), "another seed, another initialisation");
    }

    [Test]
    public void Half_of_the_samples_are_flipped()
    {
        var cfg = TransformConfig.For(64);
        int flipped = Enumerable.Range(0, 4000).Count(i => Geometry.Sample(cfg, 0, 0, i, 150, 101).Flip);
        Assert.That(flipped, Is.InRange(1850, 2150));
    }


    static IEnumerable<TestCaseData> TorchvisionCases()
    {
        string folder = Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", "transform");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string expected = c.GetProperty("expected").GetString()!;
            bool train = c.GetProperty("split").GetString() == "train";
            yield return new TestCaseData(c.GetProperty("image").GetString()!, expected, train
                ? new AugmentParams(c.GetProperty("resize").GetInt32(), c.GetProperty("angle").GetDouble(), c.GetProperty("top").GetInt32(),
                    c.GetProperty("left").GetInt32(), c.GetProperty("flip").GetBoolean())
                : (AugmentParams?)null).SetName($"Transform_equals_torchvision({expected})");
        }
    }

    /// <summary>
    /// fixtures/transform (make.py, Debian's torchvision 0.14): for fixed choices of size, angle, crop and flip, our train
    /// transform gives torchvision's bytes exactly; our val transform gives them for every seed and index (never flipped).
    /// </summary>
    [TestCaseSource(nameof(TorchvisionCases))]
    public void Transform_equals_torchvision(string image, string expected, AugmentParams? choices)
    {
        string folder = Setup.Fixture("transform");
        var img = ImageOps.DecodeFile(Path.Combine(folder, image));
        byte[] want = File.ReadAllBytes(Path.Combine(folder, expected));
        var cfg = TransformConfig.For(64, [0f, 0f, 0f], [1f, 1f, 1f]); // Normalize as the identity: v / 255
        var got = new float[3 * 64 * 64];
        if (choices is AugmentParams p)
        {
            new TrainTransform(cfg).Apply(img, p, got);
            Assert.That(Hwc(got), Is.EqualTo(want));
        }
        else
        {
            var val = new ValTransform(cfg);
            var prepared = val.Prepare(img);
            foreach (var (seed, index) in new[] { (0L, 0L), (1L, 1L), (7L, 3L), (2L, 5L) })
            {
                val.Finish(prepared, seed, 0, index, got);
                Assert.That(Hwc(got), Is.EqualTo(want), $"seed {seed}, index {index}");
            }
        }
    }

    /// <summary>CHW floats v / 255 back to HWC bytes.</summary>
    static byte[] Hwc(float[] chw)
    {
        int plane = chw.Length / 3;
        var bytes = new byte[chw.Length];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) bytes[i * 3 + c] = (byte)Math.Round(chw[c * plane + i] * 255f);
        return bytes;
    }
}
