using Keras.MobileNet.Architecture;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Act = Keras.MobileNet.Architecture.Activation;

namespace Keras.MobileNet.Model;

/// <summary>
/// Factories: a spec in, a TorchSharp module out, named as torchvision names it so state dicts move freely. Not pure:
/// initialisation draws from torch's global generator (seed it first, as <c>SingleRun.Build</c> does).
/// </summary>
public static class Factories
{
    public static nn.Module<Tensor, Tensor> Activation(Act act) => act switch
    {
        Act.ReLU6 => nn.ReLU6(inplace: true),
        Act.ReLU => nn.ReLU(inplace: true),
        _ => throw new ArgumentOutOfRangeException(nameof(act), "a linear unit has no activation module"),
    };

    /// <summary>A Conv2d (torchvision's parameters and names) that can compute in bf16 (<see cref="MixedConv2d"/>).</summary>
    public static MixedConv2d Conv(ConvUnit u) => new(u.In, u.Out, u.Kernel, u.Stride, u.Padding, u.Groups, u.Bias);

    /// <summary>BatchNorm2d with PyTorch's eps and momentum (<see cref="SafeBatchNorm2d"/>: TorchSharp's, without its Scalar race).</summary>
    public static SafeBatchNorm2d Norm(int channels) =>
        new(channels, FrameworkConstants.BatchNormEps, FrameworkConstants.BatchNormMomentum);

    /// <summary>torchvision's Conv2dNormActivation: children "0" conv, "1" norm, "2" activation.</summary>
    public static Sequential ConvNormAct(ConvUnit u) =>
        nn.Sequential(("0", Conv(u)), ("1", Norm(u.Out)), ("2", Activation(u.Act)));

    /// <summary>
    /// Inverted residual: # pw expand (when present) and # dw as Conv2dNormActivation, # pw-linear as a conv then a BN
    /// (no activation: the linear bottleneck), each under the child name torchvision gives it (<see cref="TorchvisionLayout"/>).
    /// </summary>
    public static InvertedResidual InvertedResidualBlock(BlockSpec b)
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        foreach (var k in TorchvisionLayout.Units(b, ""))
            if (k.Flat) { layers.Add((k.Conv, Conv(k.Unit))); layers.Add((k.Norm, Norm(k.Unit.Out))); }
            else layers.Add((k.Child, ConvNormAct(k.Unit)));
        return new InvertedResidual(nn.Sequential(layers), b.Residual);
    }

    public static Sequential Features(NetworkSpec spec)
    {
        static string Child(string key) => key.Split('.')[1]; // features.N
        var layers = new List<(string, nn.Module<Tensor, Tensor>)> { (Child(TorchvisionLayout.Stem(spec).Conv), ConvNormAct(spec.Stem)) };
        for (int i = 0; i < spec.Blocks.Count; i++) layers.Add((Child(TorchvisionLayout.Block(i)), InvertedResidualBlock(spec.Blocks[i])));
        layers.Add((Child(TorchvisionLayout.Last(spec).Conv), ConvNormAct(spec.Last)));
        return nn.Sequential(layers);
    }

    public static Sequential Classifier(NetworkSpec spec) =>
        nn.Sequential(("0", nn.Dropout(spec.Dropout)), ("1", nn.Linear(spec.Features, spec.Classes)));

    /// <summary>Builds and initialises the network of a spec.</summary>
    public static MobileNetV2 MobileNetV2(NetworkSpec spec)
    {
        var model = new MobileNetV2(spec, Features(spec), Classifier(spec));
        Initialization.Apply(model, spec.Preset);
        return model;
    }
}

/// <summary>The one residual combinator: y = conv(x) (+ x when the block keeps its shape).</summary>
public sealed class InvertedResidual : nn.Module<Tensor, Tensor>
{
    private readonly Sequential conv;

    public bool Skip { get; }

    public InvertedResidual(Sequential conv, bool skip) : base(nameof(InvertedResidual))
    {
        this.conv = conv;
        Skip = skip;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Skip ? x + conv.forward(x) : conv.forward(x);
}

/// <summary>features -> global average pool -> flatten -> classifier (dropout, linear), as torchvision.</summary>
public sealed class MobileNetV2 : nn.Module<Tensor, Tensor>
{
    private readonly Sequential features;
    private readonly Sequential classifier;

    public NetworkSpec Spec { get; }

    public MobileNetV2(NetworkSpec spec, Sequential features, Sequential classifier) : base(nameof(MobileNetV2))
    {
        Spec = spec;
        this.features = features;
        this.classifier = classifier;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Head(features.forward(x));

    /// <summary>The number of children of <c>features</c> (the stem, the blocks, the last convolution).</summary>
    public int FeatureChildren => features.Count;

    /// <summary>
    /// The network from <c>features</c>' child <paramref name="firstChild"/> on, given that child's input (the output
    /// of the children before it: fine-tuning's frozen part, computed elsewhere).
    /// </summary>
    public Tensor ForwardFrom(int firstChild, Tensor x)
    {
        using var scope = NewDisposeScope();
        var f = x;
        for (int i = firstChild; i < features.Count; i++) f = ((nn.Module<Tensor, Tensor>)features[i]).forward(f);
        return Head(f.alias()).MoveToOuterDisposeScope();
    }

    /// <summary>Pool, flatten and classify the features (which it disposes).</summary>
    Tensor Head(Tensor features)
    {
        using var f = features;
        using var pooled = nn.functional.adaptive_avg_pool2d(f, 1);
        using var flat = pooled.flatten(1);
        if (flat.dtype is not (ScalarType.BFloat16 or ScalarType.Float16)) return classifier.forward(flat);
        using var fp32 = flat.to(ScalarType.Float32); // bf16 features: the classifier (0.01% of the MACs) and the loss stay fp32
        return classifier.forward(fp32);
    }
}

/// <summary>Initialisation as one named pass after construction (torchvision's, and the notebook's).</summary>
public static class Initialization
{
    public static void Apply(nn.Module model, Preset preset)
    {
        using var _ = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Convolution conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case BatchNorm bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case Linear linear:
                    if (preset == Preset.Notebook) TruncNormal(linear.weight, 0, 0.01);
                    else nn.init.normal_(linear.weight, 0, 0.01);
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
            }
        }
    }

    /// <summary>
    /// PyTorch's nn.init.trunc_normal_ (inverse CDF: one uniform draw per element from the global generator, erfinv,
    /// scale, shift, clamp to [a, b]). TorchSharp 0.107's own left the tensor all zeros here, so the notebook's
    /// classifier started at 0 (caught by the initialisation test).
    /// </summary>
    public static void TruncNormal(Tensor t, double mean, double std, double a = -2, double b = 2)
    {
        using var _ = no_grad();
        double Cdf(double x) { using var v = tensor(x / Math.Sqrt(2), ScalarType.Float64); using var e = v.erf(); return (1 + e.item<double>()) / 2; }
        double lo = Cdf((a - mean) / std), hi = Cdf((b - mean) / std);
        t.uniform_(2 * lo - 1, 2 * hi - 1).erfinv_().mul_(std * Math.Sqrt(2)).add_(mean).clamp_(a, b);
    }
}
