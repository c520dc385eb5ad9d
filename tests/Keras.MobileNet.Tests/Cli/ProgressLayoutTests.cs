using Keras.MobileNet.Cli;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Keras.MobileNet.Tests;

public class ProgressLayoutTests
{
    static readonly BarState Mid = new(3, 100, 57, 148, 0.75432, 0.825, 123.4, TimeSpan.FromSeconds(4321));

    [Test]
    public void The_epoch_line_names_the_top_k_that_fit_logged_and_history_keeps_only_top_5()
    {
        var logs = Logs.Empty.With("loss", 1).With("accuracy", 0.5).With("val_loss", 1.2).With("val_accuracy", 0.4).With("val_top3", 0.75)
            .With("lr", 1e-3).With("seconds", 2);
        Assert.That(ProgressLayout.EpochFields(0, 3, logs), Does.Contain("val_top3 0.7500"));
        Assert.That(Rows.From(0, logs).ValTop5, Is.Null, "a top-3 value is not written as top-5");
        var five = new Logs(logs.Values.Remove("val_top3").Add("val_top5", 0.9));
        Assert.That(ProgressLayout.EpochFields(0, 3, five), Does.Contain("val_top5 0.9000"));
        Assert.That(Rows.From(0, five).ValTop5, Is.EqualTo(0.9));
    }

    [Test]
    public void Bar_fits_every_width_and_always_names_epoch_and_batch()
    {
        for (int width = 13; width <= 250; width++) // "3/100 57/148" needs 12 + the last column
        {
            string bar = ProgressLayout.Bar(Mid, width);
            Assert.That(bar.Length, Is.LessThanOrEqualTo(width - 1), $"width {width}: '{bar}'");
            Assert.That(bar, Does.Contain("3/100").And.Contain("57/148"), $"width {width}");
        }
    }

    [Test]
    public void Bar_drops_whole_columns_least_important_first()
    {
        string wide = ProgressLayout.Bar(Mid, 200);
        Assert.That(wide, Is.EqualTo("Epoch 3/100 [===========>................] 57/148 loss 0.7543 acc 0.8250 ETA 1:12:01 123 img/s"));
        string at60 = ProgressLayout.Bar(Mid, 60);
        Assert.That(at60, Does.Contain("loss 0.7543").And.Contain("ETA 1:12:01").And.Not.Contain("img/s"), at60);
        Assert.That(at60, Does.Match(@"\[=+>\.+\]"), "the bar survives at 60 columns");
        string at50 = ProgressLayout.Bar(Mid, 50);
        Assert.That(at50, Does.Contain("loss 0.7543").And.Not.Contain("acc").And.Not.Contain("ETA"), at50);
        Assert.That(ProgressLayout.Bar(Mid, 40), Is.EqualTo("Epoch 3/100 [=======>..........] 57/148"), "the bar outlives the loss");
        Assert.That(ProgressLayout.Bar(Mid, 29), Is.EqualTo("Epoch 3/100 57/148"), "no room for a bar: the counts alone");
        Assert.That(ProgressLayout.Bar(Mid, 15), Is.EqualTo("3/100 57/148"));
        Assert.That(ProgressLayout.Bar(Mid with { Loss = double.NaN, Accuracy = double.NaN, Eta = null, ImagesPerSecond = double.NaN }, 80),
            Does.Not.Contain("loss").And.Not.Contain("ETA"), "nothing measured yet, nothing shown");
    }

    static Logs Epoch() => Logs.Empty.With("loss", 0.75432).With("accuracy", 0.825).With("val_loss", 0.7238).With("val_accuracy", 0.875)
        .With("val_top5", 1).With("lr", 2.0833e-3).With("seconds", 2.2).With("images_per_second", 108);

    [Test]
    public void Epoch_record_wraps_at_field_boundaries_and_loses_nothing()
    {
        var fields = ProgressLayout.EpochFields(3, 8, Epoch());
        string oneLine = "Epoch 4/8 - 2.2s - 108 img/s - loss 0.7543 - accuracy 0.8250 - val_loss 0.7238 - val_accuracy 0.8750 - val_top5 1.0000 - lr 2.0833e-3";
        Assert.That(string.Join(" - ", fields), Is.EqualTo(oneLine));
        Assert.That(ProgressLayout.Wrap(fields, 200), Is.EqualTo(new[] { oneLine }));
        foreach (int width in new[] { 40, 60, 80, 100, 120 })
        {
            var lines = ProgressLayout.Wrap(fields, width);
            Assert.That(lines.All(l => l.Length <= width - 1), $"width {width}: {string.Join(" | ", lines)}");
            Assert.That(lines.Skip(1).All(l => l.StartsWith("  ")), "continuation lines are indented");
            Assert.That(string.Join(" - ", lines.Select(l => l.Trim())), Is.EqualTo(oneLine), $"width {width}");
        }
        Assert.That(ProgressLayout.Wrap(fields, 80), Has.Count.EqualTo(2));
    }
}
