using System.CommandLine;
using System.Text.Json;
using Keras.MobileNet.Backend;
using Keras.MobileNet.Bench;

using Keras.MobileNet.Runs;
using Keras.MobileNet.Optim;

namespace Keras.MobileNet.Cli;

public static class BenchCommand
{
    static int[] Ints(string s) => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(x => int.TryParse(x, out var v) && v > 0 ? v : throw new ArgumentException($"expected positive integers, not '{x}'")).ToArray();

    static void Print(object result) => Console.WriteLine(JsonSerializer.Serialize(result, Files.Json));

    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks: pipeline, train, epoch, onnx, estimate");

        var images = new Option<int>("--images") { Description = "Generated 500x375 JPEGs", DefaultValueFactory = _ => 256 };
        var workers = new Option<string>("--workers") { Description = "Worker counts, e.g. 1,2", DefaultValueFactory = _ => $"1,{Environment.ProcessorCount}" };
        var gatherOn = Words.Parsed("--device", "Where train_gather keeps its images and gathers each batch: cpu, cuda or cuda:N", Backend.DeviceChoice.Cpu, Words.Device);
        var pipeline = new Command("pipeline", "Images/s of the train and val transforms, cached and streaming; prints JSON") { images, workers, gatherOn };
        pipeline.SetAction(p => App.Guard(p, () =>
        {
            if (p.GetValue(images) < 1) throw new ArgumentException("--images must be at least 1");
            var w = Ints(p.GetValue(workers)!).Distinct().ToArray();
            Print(PipelineBench.Run(p.GetValue(images), w, log: Console.Error.WriteLine, gatherDevice: TorchRuntime.ResolveDevice(p.GetValue(gatherOn))));
            return 0;
        }));
        bench.Subcommands.Add(pipeline);

        var device = Words.Parsed("--device", "cpu, cuda or cuda:N", Backend.DeviceChoice.Cpu, Words.Device);
        var widths = new Option<string>("--width") { DefaultValueFactory = _ => "1,0.5" };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var steps = new Option<int>("--steps") { Description = "Timed step pairs (ours, baseline), at least", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 3 };
        var minSeconds = new Option<double>("--min-seconds") { Description = "Each timing runs at least this long", DefaultValueFactory = _ => 0.5 };
        var json = new Option<bool>("--json");
        var precision = Words.PrecisionOption();
        var memoryFormat = Words.MemoryFormatOption();
        var optimizer = new Option<string>("--optimizer")
        {
            Description = "Our AdamW: multi (one buffer, a few kernels per step) or per-param (TorchSharp's loop)", DefaultValueFactory = _ => "multi",
            CustomParser = r => Words.Choice(r, new Dictionary<string, string> { ["multi"] = "multi", ["per-param"] = "per-param" }),
        };
        var train = new Command("train", "Train-step and inference images/s: ours (with --precision, --memory-format, --optimizer) vs " +
                                         "TorchVision.NET mobilenet_v2 (fp32, NCHW, TorchSharp's AdamW), same process; and where our step's time goes")
            { device, widths, batch, size, steps, warmup, minSeconds, json, precision, memoryFormat, optimizer };
        train.SetAction(p => App.Guard(p, () =>
        {
            var dev = TorchRuntime.ResolveDevice(p.GetValue(device));
            var ws = Words.Widths(p.GetValue(widths)!);
            if (p.GetValue(batch) < 1 || p.GetValue(steps) < 1 || p.GetValue(warmup) < 0)
                throw new ArgumentException("--batch-size and --steps must be >= 1, --warmup >= 0");
            Data.TransformConfig.For(p.GetValue(size)); // the image size rule of training
            var r = TrainBench.Run(dev, ws, p.GetValue(batch), p.GetValue(size), p.GetValue(steps), p.GetValue(warmup),
                (w, c) => TorchSharp.torchvision.models.mobilenet_v2(num_classes: c, width_mult: w), Console.Error.WriteLine, p.GetValue(minSeconds),
                new OursConfig(p.GetValue(precision), p.GetValue(memoryFormat), PerParameterAdamW: p.GetValue(optimizer) == "per-param"));
            if (p.GetValue(json)) Print(new { result = r, ratios = r.Ratios().Select(x => new { x.Width, train = x.TrainRatio, inference = x.InferRatio }) });
            else
            {
                Console.WriteLine($"ours: {Files.Word(r.Config!.Precision)}, {Files.Word(r.Config.MemoryFormat)}, {(r.Config.PerParameterAdamW ? "per-parameter" : "multi-tensor")} AdamW");
                foreach (var (w, tr, inf) in r.Ratios()) Console.WriteLine($"width {w}: ours/baseline train {tr:F3}x, inference {inf:F3}x");
                foreach (var b in r.Breakdown!)
                    Console.WriteLine($"width {b.Width}: our step {b.StepMs:F1} ms = forward {b.ForwardMs:F1} + backward {b.BackwardMs:F1} + optimizer {b.OptimizerMs:F1}; " +
                                      $"host issues a step in {b.HostSubmitMs:F1} ms");
                Console.WriteLine($"peak working set {r.PeakWorkingSetBytes / 1e6:F0} MB" + (r.PeakDeviceBytes is long d ? $", peak device memory used {d / 1e9:F2} GB" : ""));
            }
            return 0;
        }));
        bench.Subcommands.Add(train);

        var eDevice = Words.Parsed("--device", "cpu, cuda or cuda:N", Backend.DeviceChoice.Cpu, Words.Device);
        var eWidth = new Option<double>("--width") { DefaultValueFactory = _ => 1.0 };
        var eBatch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 32 };
        var eImages = new Option<int>("--images") { DefaultValueFactory = _ => 256 };
        var eEpochs = new Option<int>("--epochs") { Description = "Epochs through the pipeline (memory check: 5)", DefaultValueFactory = _ => 1 };
        var eWorkers = new Option<int>("--workers") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var eJson = new Option<bool>("--json");
        var ePrecision = Words.PrecisionOption();
        var eFormat = Words.MemoryFormatOption();
        var ePaths = new Option<string>("--paths")
        {
            Description = "Pipeline paths, each beside the pure steps: decoded (a resize per sample, host), resized (resized once, host), gather (one gather per batch on the device)",
            DefaultValueFactory = _ => "decoded",
        };
        var epoch = new Command("epoch", "One real epoch through the pipeline vs the same steps on pre-made tensors")
            { eDevice, eWidth, eBatch, eImages, eEpochs, eWorkers, eJson, ePrecision, eFormat, ePaths };
        epoch.SetAction(p => App.Guard(p, () =>
        {
            if (new[] { eBatch, eImages, eEpochs, eWorkers }.FirstOrDefault(o => p.GetValue(o) < 1) is { } bad)
                throw new ArgumentException($"{bad.Name} must be at least 1, not {p.GetValue(bad)}");
            Architecture.MobileNetV2Spec.Validate(p.GetValue(eWidth), 10);
            var dev = TorchRuntime.ResolveDevice(p.GetValue(eDevice));
            var r = EpochBench.Run(dev, p.GetValue(eWidth), p.GetValue(eBatch), p.GetValue(eImages), p.GetValue(eEpochs), p.GetValue(eWorkers),
                log: Console.Error.WriteLine, precision: p.GetValue(ePrecision), memoryFormat: p.GetValue(eFormat),
                paths: p.GetValue(ePaths)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
            if (p.GetValue(eJson)) Print(r);
            else
                foreach (var path in r.Paths)
                    Console.WriteLine($"{path.Path}: pipeline epoch / pure steps = {path.Ratio:F3} ({path.Seconds:F2} s vs {r.PureStepSeconds:F2} s)");
            return 0;
        }));
        bench.Subcommands.Add(epoch);

        var oWidths = new Option<string>("--width") { DefaultValueFactory = _ => "1,0.5" };
        var oBatches = new Option<string>("--batch-size") { Description = "Batch sizes, e.g. 1,32", DefaultValueFactory = _ => "1,32" };
        var oRounds = new Option<int>("--rounds") { Description = "Timed rounds (each runs the four ways once)", DefaultValueFactory = _ => 10 };
        var oSize = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var onnxBench = new Command("onnx", "CPU inference images/s: TorchSharp vs ONNX Runtime on the export (BatchNorm folded, as nodes, and int8)")
            { oWidths, oBatches, oRounds, oSize };
        onnxBench.SetAction(p => App.Guard(p, () =>
        {
            if (p.GetValue(oRounds) < 1) throw new UserError("--rounds must be at least 1", 2);
            Data.TransformConfig.For(p.GetValue(oSize));
            var rows = OnnxBench.Run(Words.Widths(p.GetValue(oWidths)!), Ints(p.GetValue(oBatches)!), p.GetValue(oSize), p.GetValue(oRounds),
                Console.Error.WriteLine);
            Print(rows);
            return 0;
        }));
        bench.Subcommands.Add(onnxBench);
        bench.Subcommands.Add(EstimateBench.Create());
        return bench;
    }
}
