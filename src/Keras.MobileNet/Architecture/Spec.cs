namespace Keras.MobileNet.Architecture;

/// <summary>Which network: the paper's (= Keras = torchvision) or the reference notebook's own variant.</summary>
public enum Preset { Paper, Notebook }

public enum Activation { None, ReLU, ReLU6 }

/// <summary>One row of the paper's Table 2: expansion t, output channels c, repeats n, first stride s.</summary>
public readonly record struct StageRow(int T, int C, int N, int S);

/// <summary>Conv2d (k x k, stride, groups, optional bias) -> BatchNorm2d -> activation.</summary>
public sealed record ConvUnit(int In, int Out, int Kernel, int Stride, int Groups, bool Bias, Activation Act)
{
    public int Padding => (Kernel - 1) / 2;
    public bool Depthwise => Groups > 1 && Groups == In;
}

/// <summary>
/// An inverted residual block, its three units by name:
/// # pw: 1x1 expand to the hidden width (absent in the paper's network at t = 1),
/// # dw: 3x3 depthwise at the block's stride,
/// # pw-linear: 1x1 projection without activation (the linear bottleneck).
/// </summary>
public sealed record BlockSpec(int In, int Hidden, int Out, int Stride, bool Residual, ConvUnit? Expand, ConvUnit Depthwise, ConvUnit Project)
{
    /// <summary>The units in forward order.</summary>
    public IEnumerable<ConvUnit> Units => Expand is null ? [Depthwise, Project] : [Expand, Depthwise, Project];
}

/// <summary>The whole network as values. Nothing here touches a tensor.</summary>
public sealed record NetworkSpec(
    Preset Preset, double Width, int Classes, double Dropout,
    ConvUnit Stem, IReadOnlyList<BlockSpec> Blocks, ConvUnit Last)
{
    public int Features => Last.Out;
}

/// <summary>Constants that differ between frameworks; silent accuracy bugs live here, so they live in one place.</summary>
public static class FrameworkConstants
{
    /// <summary>PyTorch BatchNorm: eps 1e-5 and momentum 0.1 (Keras would be 1e-3 and 0.999 = 1 - 0.001).</summary>
    public const double BatchNormEps = 1e-5;
    public const double BatchNormMomentum = 0.1;
    public const int StemChannels = 32;
    public const int LastChannels = 1280;
    public const int Divisor = 8;
}

/// <summary>The width rules, each a small named function (parameter counts and weight compatibility depend on them).</summary>
public static class WidthRules
{
    /// <summary>
    /// The TF/torchvision rule: round to the nearest multiple of <paramref name="divisor"/>, at least the divisor,
    /// and never more than 10% below the requested value.
    /// </summary>
    public static int MakeDivisible(double value, int divisor = FrameworkConstants.Divisor, int? minValue = null)
    {
        if (divisor <= 0) throw new ArgumentOutOfRangeException(nameof(divisor), "divisor must be positive");
        int min = minValue ?? divisor;
        int rounded = Math.Max(min, (int)(value + divisor / 2.0) / divisor * divisor);
        if (rounded < 0.9 * value) rounded += divisor;
        return rounded;
    }

    /// <summary>Channels of a stage or of the stem under a preset's rule.</summary>
    public static int Channels(Preset preset, int channels, double width) => preset switch
    {
        Preset.Paper => MakeDivisible(channels * width),
        // The notebook truncates: int(c * width), no rounding to a multiple of 8.
        Preset.Notebook => (int)(channels * width),
        _ => throw new ArgumentOutOfRangeException(nameof(preset)),
    };

    /// <summary>
    /// The last 1x1 conv. The paper: "we apply width multiplier to all layers except the very last convolutional
    /// layer" for widths below one, so max(1, width); the notebook scales it like every other layer.
    /// </summary>
    public static int LastChannels(Preset preset, double width) => preset switch
    {
        Preset.Paper => MakeDivisible(FrameworkConstants.LastChannels * Math.Max(1.0, width)),
        Preset.Notebook => (int)(FrameworkConstants.LastChannels * width),
        _ => throw new ArgumentOutOfRangeException(nameof(preset)),
    };

    /// <summary>Hidden width: torchvision's round(in * t) (Python rounds half to even), the notebook's int(in * t).</summary>
    public static int Hidden(Preset preset, int inChannels, int t) => preset switch
    {
        Preset.Paper => (int)Math.Round((double)inChannels * t, MidpointRounding.ToEven),
        Preset.Notebook => inChannels * t,
        _ => throw new ArgumentOutOfRangeException(nameof(preset)),
    };
}

public static class MobileNetV2Spec
{
    /// <summary>Table 2 of the paper (arXiv 1801.04381); the notebook uses the same rows.</summary>
    public static readonly IReadOnlyList<StageRow> Table =
    [
        new(1, 16, 1, 1),
        new(6, 24, 2, 2),
        new(6, 32, 3, 2),
        new(6, 64, 4, 2),
        new(6, 96, 3, 1),
        new(6, 160, 3, 2),
        new(6, 320, 1, 1),
    ];

    public const int MinImageSize = 32;

    public static void Validate(double width, int classes)
    {
        if (!(width > 0) || double.IsInfinity(width) || width > 16)
            throw new ArgumentException($"width must be a number > 0 (and at most 16), not {width}");
        if (classes < 2) throw new ArgumentException($"classes must be at least 2, not {classes}");
    }

    /// <summary>Expands the table into per-block specs for a preset, width and class count.</summary>
    public static NetworkSpec Build(Preset preset = Preset.Paper, double width = 1.0, int classes = 1000,
        double? dropout = null)
    {
        Validate(width, classes);
        bool bias = preset == Preset.Notebook;
        var act = preset == Preset.Notebook ? Activation.ReLU : Activation.ReLU6;
        int stem = WidthRules.Channels(preset, FrameworkConstants.StemChannels, width);
        if (stem < 1) throw new ArgumentException($"width {width} leaves the stem with no channels");

        var blocks = new List<BlockSpec>();
        int inCh = stem;
        foreach (var row in Table)
        {
            int outCh = WidthRules.Channels(preset, row.C, width);
            if (outCh < 1) throw new ArgumentException($"width {width} leaves a stage of {row.C} channels empty");
            for (int i = 0; i < row.N; i++)
            {
                int stride = i == 0 ? row.S : 1;
                blocks.Add(Block(preset, inCh, outCh, stride, row.T, bias, act));
                inCh = outCh;
            }
        }
        int last = WidthRules.LastChannels(preset, width);
        return new NetworkSpec(preset, width, classes,
            dropout ?? (preset == Preset.Paper ? 0.2 : 0.0),
            new ConvUnit(3, stem, 3, 2, 1, bias, act),
            blocks,
            new ConvUnit(inCh, last, 1, 1, 1, bias, act));
    }

    static BlockSpec Block(Preset preset, int inCh, int outCh, int stride, int t, bool bias, Activation act)
    {
        int hidden = WidthRules.Hidden(preset, inCh, t);
        // # pw: torchvision drops the expand conv when t = 1; the notebook keeps it.
        ConvUnit? expand = t != 1 || preset == Preset.Notebook ? new ConvUnit(inCh, hidden, 1, 1, 1, bias, act) : null;
        var depthwise = new ConvUnit(hidden, hidden, 3, stride, hidden, bias, act);        // # dw
        var project = new ConvUnit(hidden, outCh, 1, 1, 1, bias, Activation.None);        // # pw-linear
        return new BlockSpec(inCh, hidden, outCh, stride, stride == 1 && inCh == outCh, expand, depthwise, project);
    }
}
