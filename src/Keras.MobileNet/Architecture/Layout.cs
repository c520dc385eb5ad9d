namespace Keras.MobileNet.Architecture;

/// <summary>A conv unit where torchvision keeps it: its conv and BatchNorm key prefixes, and its activation's (null: linear).</summary>
public sealed record UnitKeys(ConvUnit Unit, string Conv, string Norm, string? Act)
{
    /// <summary>Conv and BatchNorm as two flat children (the linear projection), not one Conv2dNormActivation.</summary>
    public bool Flat => Act is null;
    /// <summary>The child of the enclosing Sequential that holds this Conv2dNormActivation ("3" of "3.0"; a flat unit has none).</summary>
    public string Child => Conv.Split('.')[^2];
}

/// <summary>
/// torchvision's module layout of MobileNetV2, the one place it is computed: the factories name their children with
/// it, the analytic counts and the ONNX export name their layers with it, so state dicts move both ways unchanged.
/// </summary>
public static class TorchvisionLayout
{
    public static UnitKeys Stem(NetworkSpec spec) => ConvNormAct(spec.Stem, "features.0");

    public static UnitKeys Last(NetworkSpec spec) => ConvNormAct(spec.Last, $"features.{spec.Blocks.Count + 1}");

    /// <summary>Block <paramref name="index"/> (0-based) is features.{index + 1}; its units live in its "conv" Sequential.</summary>
    public static string Block(int index) => $"features.{index + 1}";

    /// <summary>
    /// The units of a block under <paramref name="conv"/> (its "conv" Sequential; "" for names relative to it):
    /// # pw at 0 when present, then # dw, each a Conv2dNormActivation (conv .0, BN .1, activation .2), then # pw-linear
    /// as a flat conv and BN.
    /// </summary>
    public static IReadOnlyList<UnitKeys> Units(BlockSpec block, string conv)
    {
        var keys = new List<UnitKeys>();
        if (block.Expand is { } expand) keys.Add(ConvNormAct(expand, Join(conv, $"{keys.Count}")));
        keys.Add(ConvNormAct(block.Depthwise, Join(conv, $"{keys.Count}")));
        keys.Add(new UnitKeys(block.Project, Join(conv, $"{keys.Count}"), Join(conv, $"{keys.Count + 1}"), null));
        return keys;
    }

    /// <summary>torchvision's Conv2dNormActivation, always with its activation (the linear unit is the flat projection).</summary>
    static UnitKeys ConvNormAct(ConvUnit unit, string at) => new(unit, $"{at}.0", $"{at}.1", $"{at}.2");

    static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";
}
