namespace Keras.MobileNet.Tests;

[SetUpFixture]
public sealed class Setup
{
    [OneTimeSetUp]
    public void LoadTorch() => TorchRuntime.Initialize();

    /// <summary>The checkout these tests were built from (the folder holding Keras.MobileNet.sln).</summary>
    public static string RepoRoot()
    {
        var d = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "Keras.MobileNet.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("not inside the repository");
    }

    public static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "fixtures", name);
}

/// <summary>A fresh temporary folder for each test, removed after it.</summary>
public abstract class WithTempDir(string prefix)
{
    protected string dir = "";
    [SetUp] public void MakeDir() => dir = Directory.CreateTempSubdirectory(prefix).FullName;
    [TearDown] public void RemoveDir() => Directory.Delete(dir, true);
}
