namespace Keras.MobileNet.Tests;

/// <summary>The fixture README's parity recipe, written with plain TorchSharp calls (an independent reference).</summary>
static class Parity
{
    public sealed record Result(double[] Losses, Tensor LogitsBefore, Tensor LogitsAfter, Tensor Bn0RunningMean);

    public static Result Run(nn.Module<Tensor, Tensor> model, Tensor trainX, Tensor trainY, Tensor evalX)
    {
        Tensor before;
        model.eval();
        using (no_grad()) before = model.forward(evalX);
        model.train();
        using var opt = optim.AdamW(model.parameters(), lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-2);
        var losses = new double[3];
        for (int i = 0; i < 3; i++)
        {
            opt.zero_grad();
            using var loss = nn.functional.cross_entropy(model.forward(trainX), trainY, label_smoothing: 0.1);
            loss.backward();
            opt.step();
            losses[i] = loss.to(float64).item<double>();
        }
        model.eval();
        Tensor after;
        using (no_grad()) after = model.forward(evalX);
        var mean = model.state_dict()["features.0.1.running_mean"].clone();
        return new Result(losses, before, after, mean);
    }
}
