
namespace Keras.MobileNet.Engine;

/// <summary>Sets the learning rate at the start of each epoch from a pure schedule.</summary>
public sealed class LearningRateScheduler(Func<int, double> schedule) : Callback
{
    public override void OnEpochBegin(int epoch, Logs logs) => Model.LearningRate = schedule(epoch);
}

/// <summary>Sets the learning rate before every batch from a pure per-step schedule (warm-up + cosine).</summary>
public sealed class StepLearningRateScheduler(Func<long, double> schedule, int stepsPerEpoch) : Callback
{
    int epoch;
    public override void OnEpochBegin(int epoch, Logs logs)
    {
        this.epoch = epoch;
        Model.LearningRate = schedule((long)epoch * stepsPerEpoch);
    }
    public override void OnBatchBegin(int batch, Logs logs) => Model.LearningRate = schedule((long)epoch * stepsPerEpoch + batch);
}
