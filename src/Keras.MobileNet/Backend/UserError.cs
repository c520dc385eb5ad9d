namespace Keras.MobileNet.Backend;

/// <summary>Thrown for a problem the user can fix (bad argument, missing device, bad file): one line, no stack.</summary>
public class UserError(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
