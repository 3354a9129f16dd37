namespace SyConn.Backend.Storage;

/// <summary>
/// An optimistic push (<see cref="StoreOptions.Optimistic"/>) found that someone else pushed the store after it was
/// pulled, so it wrote nothing. Pull again (or reopen) and redo the change; <see cref="OptimisticRetry"/> does that.
/// </summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class StoreConflictException : IOException
{
    /// <summary>Creates the exception for a store and the generations seen.</summary>
    /// <param name="location">The store's address.</param>
    /// <param name="pulledGeneration">The generation the pull read.</param>
    /// <param name="currentGeneration">The generation found at push time.</param>
    public StoreConflictException(string location, long pulledGeneration, long currentGeneration)
        : base($"{location}: someone pushed the store after it was pulled (generation {pulledGeneration} pulled, {currentGeneration} now); nothing was written: pull again and redo the change")
    {
        Location = location;
        PulledGeneration = pulledGeneration;
        CurrentGeneration = currentGeneration;
    }

    /// <summary>The store's address.</summary>
    public string Location { get; }

    /// <summary>The generation the pull read.</summary>
    public long PulledGeneration { get; }

    /// <summary>The generation found at push time.</summary>
    public long CurrentGeneration { get; }
}
