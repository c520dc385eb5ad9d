using Keras.MobileNet.Backend;
using NUnit.Framework;

namespace Keras.MobileNet.Tests;

[SetUpFixture]
public sealed class Setup
{
    [OneTimeSetUp]
    public void LoadTorch() => TorchRuntime.Initialize();

    public static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", name);
}
