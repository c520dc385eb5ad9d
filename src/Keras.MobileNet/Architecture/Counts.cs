namespace Keras.MobileNet.Architecture;

/// <summary>
/// One leaf layer as the spec predicts it: its module path (torchvision's key prefix), what it is, its output
/// shape (channels, height, width) for one image, and what it costs.
/// </summary>
public sealed record LayerInfo(string Name, string Kind, int Channels, int Height, int Width,
    long Trainable, long NonTrainable, long Macs);

public sealed record ModelCounts(long Trainable, long NonTrainable, long Macs)
{
    public long Total => Trainable + NonTrainable;
}

/// <summary>Parameter and MAC counts from the spec alone, no tensors.</summary>
public static class Counts
{
    /// <summary>Spatial size after a conv with "same"-style padding (k-1)/2: floor((n + 2p - k) / s) + 1.</summary>
    public static int ConvOut(int size, int kernel, int stride, int padding) => (size + 2 * padding - kernel) / stride + 1;

    /// <summary>
    /// Counts with the children of features before <paramref name="unfreezeFrom"/> frozen (fine-tuning: their
    /// parameters count as non-trainable, as Keras' summary shows them); the number of children freezes all of features.
    /// </summary>
    public static ModelCounts UnderFreeze(NetworkSpec spec, int unfreezeFrom, int height = 224, int width = 224)
    {
        int children = spec.Blocks.Count + 2;
        if (unfreezeFrom < 0 || unfreezeFrom > children)
            throw new ArgumentException($"--unfreeze-from must be in [0, {children}] ({children}: all of features frozen), not {unfreezeFrom}");
        static int Child(string name) => name.StartsWith("features.", StringComparison.Ordinal) ? int.Parse(name.Split('.')[1]) : int.MaxValue;
        var layers = Layers(spec, height, width);
        long frozen = layers.Where(l => Child(l.Name) < unfreezeFrom).Sum(l => l.Trainable);
        var all = Of(spec, height, width);
        return all with { Trainable = all.Trainable - frozen, NonTrainable = all.NonTrainable + frozen };
    }

    /// <summary>Every leaf layer in forward order, named by its module path in the built network.</summary>
    public static IReadOnlyList<LayerInfo> Layers(NetworkSpec spec, int height = 224, int width = 224)
    {
        ValidateImage(height, width);
        var rows = new List<LayerInfo>();
        int h = height, w = width;

        void Unit(UnitKeys k)
        {
            var u = k.Unit;
            int oh = ConvOut(h, u.Kernel, u.Stride, u.Padding), ow = ConvOut(w, u.Kernel, u.Stride, u.Padding);
            long weights = (long)u.Out * (u.In / u.Groups) * u.Kernel * u.Kernel;
            string kind = u.Depthwise ? $"DepthwiseConv2d {u.Kernel}x{u.Kernel}/{u.Stride}" : $"Conv2d {u.Kernel}x{u.Kernel}/{u.Stride}";
            rows.Add(new LayerInfo(k.Conv, kind, u.Out, oh, ow, weights + (u.Bias ? u.Out : 0), 0, weights * oh * ow));
            // BatchNorm: gamma and beta train; moving mean and variance do not (the Keras way of counting).
            rows.Add(new LayerInfo(k.Norm, "BatchNorm2d", u.Out, oh, ow, 2L * u.Out, 2L * u.Out, 0));
            if (k.Act is string act) rows.Add(new LayerInfo(act, u.Act.ToString(), u.Out, oh, ow, 0, 0, 0));
            h = oh; w = ow;
        }

        Unit(TorchvisionLayout.Stem(spec));
        for (int b = 0; b < spec.Blocks.Count; b++)
        {
            var block = spec.Blocks[b];
            foreach (var k in TorchvisionLayout.Units(block, $"{TorchvisionLayout.Block(b)}.conv")) Unit(k);
            if (block.Residual)
                rows.Add(new LayerInfo(TorchvisionLayout.Block(b), "Add", block.Out, h, w, 0, 0, 0));
        }
        Unit(TorchvisionLayout.Last(spec));

        rows.Add(new LayerInfo("pool", "AdaptiveAvgPool2d", spec.Features, 1, 1, 0, 0, 0));
        rows.Add(new LayerInfo("classifier.0", $"Dropout({spec.Dropout:0.##})", spec.Features, 1, 1, 0, 0, 0));
        rows.Add(new LayerInfo("classifier.1", "Linear", spec.Classes, 1, 1,
            (long)spec.Features * spec.Classes + spec.Classes, 0, (long)spec.Features * spec.Classes));
        return rows;
    }

    public static ModelCounts Of(NetworkSpec spec, int height = 224, int width = 224)
    {
        var rows = Layers(spec, height, width);
        return new ModelCounts(rows.Sum(r => r.Trainable), rows.Sum(r => r.NonTrainable), rows.Sum(r => r.Macs));
    }

    public static void ValidateImage(int height, int width)
    {
        if (height < MobileNetV2Spec.MinImageSize || width < MobileNetV2Spec.MinImageSize)
            throw new ArgumentException($"image size must be at least {MobileNetV2Spec.MinImageSize} px, not {height}x{width}");
    }
}
