using Microsoft.Extensions.Logging;

namespace SyConn.Backend.Tests.EntryStores;

/// <summary>An <see cref="ILogger"/> that keeps every message with its level, for asserting on warnings.</summary>
/// <remarks>Thread-safe: stores may log from the thread that disposes them.</remarks>
public sealed class ListLogger : ILogger
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    /// <summary>What was logged, in order.</summary>
    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries) return _entries.ToArray();
        }
    }

    /// <summary>The messages logged at <see cref="LogLevel.Warning"/>.</summary>
    public IReadOnlyList<string> Warnings => Entries.Where(e => e.Level == LogLevel.Warning).Select(e => e.Message).ToArray();

    /// <inheritdoc/>
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    /// <inheritdoc/>
    public bool IsEnabled(LogLevel logLevel) => true;

    /// <inheritdoc/>
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        lock (_entries) _entries.Add((logLevel, formatter(state, exception)));
    }
}
