using Keras.MobileNet.Backend;
using Keras.MobileNet.Data;
using Keras.MobileNet.Runs;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Keras.MobileNet.Export;

/// <summary>The images int8 calibration runs the network on: N of a folder's images through the model's val transform.</summary>
public static class Calibration
{
    /// <summary>
    /// Up to <paramref name="count"/> images of <paramref name="dir"/> (any depth; spread evenly over its sorted files, so a
    /// folder of class folders gives every class), prepared once as the model's val transform prepares them; the result
    /// serves them as normalized batches, as often as asked. Unreadable files are skipped and counted.
    /// </summary>
    public static (Func<IEnumerable<Tensor>> Batches, int Images, int Skipped) FromFolder(string dir, ModelCard card, int count, int batch = 16)
    {
        if (count < 1) throw new UserError($"--calibration-images must be at least 1, not {count}", 2);
        if (!Directory.Exists(dir)) throw new UserError($"--calibrate: {dir} is not a folder");
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(ImageFolder.IsImage)
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new UserError($"--calibrate: {dir} has no images (.jpg, .jpeg, .png)");
        var picked = Enumerable.Range(0, Math.Min(count, files.Count)).Select(i => files[(int)((long)i * files.Count / Math.Min(count, files.Count))]).ToList();
        var cfg = TransformConfig.For(card.ImageSize, card.Mean, card.Std);
        var val = new ValTransform(cfg);
        var bad = new BadImageLog();
        var prepared = picked.Select(f => bad.TryRead(f, () => val.Prepare(ImageOps.DecodeFile(f)))).OfType<RgbImage>().ToList();
        if (prepared.Count == 0) throw new UserError($"--calibrate: none of the {picked.Count} images picked from {dir} is readable");
        int size = cfg.ImageSize, per = 3 * size * size;
        IEnumerable<Tensor> Batches()
        {
            for (int start = 0; start < prepared.Count; start += batch)
            {
                int n = Math.Min(batch, prepared.Count - start);
                var data = new float[n * per];
                for (int i = 0; i < n; i++) val.Finish(prepared[start + i], 0, 0, 0, data.AsSpan(i * per, per));
                yield return tensor(data, [n, 3, size, size]);
            }
        }
        return (Batches, prepared.Count, bad.Count);
    }

    /// <summary>
    /// Up to <paramref name="count"/> images of a loader's dataset, spread evenly over it (a val set sorted by class gives
    /// every class), as the loader serves them (a val loader: the val transform), float32 on the CPU, in batches of
    /// <paramref name="batch"/>; made afresh each time they are asked for (nothing held between the passes).
    /// </summary>
    public static (Func<IEnumerable<Tensor>> Batches, int Images) FromLoader(DataLoader loader, int count, int batch = 16)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "at least 1");
        int n = Math.Min(count, loader.Count);
        var picked = Enumerable.Range(0, n).Select(i => (int)((long)i * loader.Count / n)).ToArray();
        IEnumerable<Tensor> Batches()
        {
            for (int start = 0; start < n; start += batch)
            {
                using var b = loader.MakeBatch(0, picked.AsSpan(start, Math.Min(batch, n - start)));
                using var images = b.Images.to(ScalarType.Float32, CPU);
                yield return images.contiguous();
            }
        }
        return (Batches, n);
    }
}
