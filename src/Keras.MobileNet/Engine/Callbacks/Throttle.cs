
namespace Keras.MobileNet.Engine;

/// <summary>Sleeps after each batch: a test aid (KM_THROTTLE_MS) that widens the window in which a run can be interrupted.</summary>
public sealed class Throttle(int ms) : Callback
{
    public override void OnBatchEnd(int batch, Logs logs) => Thread.Sleep(ms);
}
