using Keras.MobileNet.Cli;
using System.Diagnostics;
using k8s;
using k8s.Models;

namespace Keras.MobileNet.Tests;

/// <summary>The recipe as the command line gives it reaches the network.</summary>
[Category("Slow")] // starts the Train program, a terminal or a server
public sealed class RecipeTests() : WithTempDir("km-recipe-")
{
    [Test]
    public void Arch_in_any_case_writes_the_same_model_card_with_the_paper_s_dropout()
    {
        string data = Path.Combine(dir, "data");
        Assert.That(Cli.Run(dir, "synth", "--out", data, "--classes", "2", "--train", "4", "--val", "2", "--size", "32").ExitCode, Is.EqualTo(0));
        string Card(string arch, params string[] more)
        {
            string run = Path.Combine(dir, $"{arch}{more.Length}");
            var r = Cli.Run(dir, ["--dataset", "folder", "--data", data, "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--width", "0.25",
                "--arch", arch, "--workers", "1", "--out", run, "--tensorboard", "false", .. more]);
            Assert.That(r.ExitCode, Is.EqualTo(0), r.Err);
            return File.ReadAllText(Path.Combine(run, "model.json"));
        }
        string upper = Card("Paper"), lower = Card("paper");
        Assert.That(upper, Is.EqualTo(lower));
        Assert.That(upper, Does.Contain("\"dropout\": 0.2").And.Contain("\"arch\": \"paper\""));
        Assert.That(Card("NOTEBOOK"), Does.Contain("\"dropout\": 0,").And.Contain("\"arch\": \"notebook\""));
        Assert.That(Card("paper", "--dropout", "0.3"), Does.Contain("\"dropout\": 0.3"));
    }
}
