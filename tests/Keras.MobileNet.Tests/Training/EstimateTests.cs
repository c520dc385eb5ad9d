using Keras.MobileNet.Cli;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Keras.MobileNet.Tests;

public class EstimateTests
{
    [Test]
    public void Whole_run_adds_every_width_epoch_batch_and_checkpoint()
    {
        var shape = new RunShape(TrainImages: 130, ValImages: 70, BatchSize: 64, Epochs: 10, ImageSize: 224);
        Assert.That((shape.TrainBatches, shape.ValBatches), Is.EqualTo((3, 2)), "partial batches count");
        var costs = new[] { new StepCost(1.0, 2.0, 0.5, 0.25), new StepCost(0.5, 1.0, 0.25, 0.25) };
        Assert.That(Estimate.WholeSeconds(shape, costs), Is.EqualTo(10 * (3 * 2.0 + 2 * 0.5 + 0.25) + 10 * (3 * 1.0 + 2 * 0.25 + 0.25)));
    }

    [Test]
    public void Shorter_recipe_keeps_the_largest_image_size_that_fits_ten_epochs()
    {
        Assert.That(Estimate.Shorter(3000, 3600, 224, 100), Is.Null, "fits already");
        // 100 epochs in 10 hours: 10 epochs at 224 fit in one hour.
        Assert.That(Estimate.Shorter(36000, 3600, 224, 100), Is.EqualTo((224, 10)));
        // 100 hours: at 224 one epoch an hour; at 128, (128/224)^2 = 0.327 of the cost: 3 epochs; at 96: 5.4 -> nothing fits 10.
        Assert.That(Estimate.Shorter(360000, 3600, 224, 100), Is.EqualTo((96, 5)));
        // 25 hours: 4 epochs at 224, 12 at 128 (12.2), and 160 gives 7.8: 128 is the largest with ten.
        Assert.That(Estimate.Shorter(90000, 3600, 224, 100), Is.EqualTo((128, 12)));
        Assert.That(Estimate.Shorter(7200, 3600, 224, 6), Is.EqualTo((128, 6)), "fewer than ten epochs: all of them are kept, at 128 px (9.2 would fit)");
    }

    [Test]
    public void Suggested_command_is_the_users_with_the_new_values()
    {
        string[] args = ["--width", "0.75", "--data", "my data", "--epochs", "100", "--estimate-only"];
        var set = new Dictionary<string, string> { ["--epochs"] = "12", ["--image-size"] = "128" };
        Assert.That(Keras.MobileNet.Cli.Words.CommandWith(args, set),
            Is.EqualTo("dotnet run --project src/Train -- --width 0.75 --data 'my data' --epochs 12 --image-size 128"));
    }
}
