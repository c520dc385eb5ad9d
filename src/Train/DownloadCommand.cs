using System.CommandLine;
using Keras.MobileNet.Data;
using Keras.MobileNet.Downloads;
using Spectre.Console;

namespace Keras.MobileNet.Cli;

public static class DownloadCommand
{
    public static Command Create()
    {
        var size = Words.Choice("--size", "Imagenette size", ImagenetteSize.Full);
        var data = new Option<string>("--data") { Description = "Data folder", DefaultValueFactory = _ => "data" };
        var baseUrl = new Option<string?>("--base-url") { Description = $"Mirror (or ${Imagenette.BaseUrlVariable})" };
        var cmd = new Command("download", "Download, verify and extract Imagenette") { size, data, baseUrl };
        cmd.SetAction(p => App.Guard(p, () =>
        {
            var archive = Imagenette.Archive(p.GetValue(size));
            using var http = Download.NewClient();
            string folder = "";
            if (Console.IsOutputRedirected)
                folder = Imagenette.EnsureAsync(archive, p.GetValue(data)!, p.GetValue(baseUrl) ?? Environment.GetEnvironmentVariable(Imagenette.BaseUrlVariable), http, null, App.Stdout).GetAwaiter().GetResult();
            else
                App.Console2.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask(archive.FileName, maxValue: archive.Bytes);
                        var progress = new Progress<DownloadProgress>(d => task.Value = d.Bytes);
                        folder = Imagenette.EnsureAsync(archive, p.GetValue(data)!, p.GetValue(baseUrl) ?? Environment.GetEnvironmentVariable(Imagenette.BaseUrlVariable), http, progress, App.Stdout).GetAwaiter().GetResult();
                        task.Value = archive.Bytes;
                    });
            var train = ImageFolder.Scan(folder, "train");
            var val = ImageFolder.Scan(folder, "val", train.Classes);
            Console.WriteLine($"{folder}: {train.Samples.Count} train, {val.Samples.Count} val images, {train.Classes.Count} classes");
            var (trainCounts, valCounts) = (train.CountsPerClass(), val.CountsPerClass());
            for (int i = 0; i < train.Classes.Count; i++)
                Console.WriteLine($"  {i} {train.Classes[i]} {Imagenette.HumanName(train.Classes[i])}: {trainCounts[i]} / {valCounts[i]}");
            return 0;
        }));
        return cmd;
    }
}
