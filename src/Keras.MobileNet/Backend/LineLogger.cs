using Microsoft.Extensions.Logging;

namespace Keras.MobileNet.Backend;

/// <summary>
/// An <see cref="ILogger"/> that hands each message, formatted, to a function: the library's reports (what a training
/// loads, its estimate, each epoch's line, downloads, skipped images) as plain lines, for a console or a test. A host
/// with its own logging passes its <see cref="ILogger"/> instead.
/// </summary>
/// <param name="write">Receives each message at <paramref name="minimum"/> or above (a warning's text starts "warning: ").</param>
/// <param name="minimum">The lowest level written.</param>
public sealed class LineLogger(Action<string> write, LogLevel minimum = LogLevel.Information) : ILogger
{
    /// <inheritdoc/>
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    /// <inheritdoc/>
    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

    /// <inheritdoc/>
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) write(formatter(state, exception));
    }
}

/// <summary>How the library writes its lines to an <see cref="ILogger"/>: the text as it is (no template).</summary>
internal static class Say
{
    public static void Line(this ILogger log, string text) => log.Log(LogLevel.Information, default, text, null, static (s, _) => s);
    public static void Warning(this ILogger log, string text) => log.Log(LogLevel.Warning, default, text, null, static (s, _) => s);
}
