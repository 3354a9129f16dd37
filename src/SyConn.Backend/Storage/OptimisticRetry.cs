namespace SyConn.Backend.Storage;

/// <summary>
/// Reruns an optimistic read-modify-write (<see cref="StoreOptions.Optimistic"/>) until its push commits: open
/// (pull), change, push; on <see cref="StoreConflictException"/> the store is disposed and the whole cycle runs
/// again after a short randomised pause, so the change is always applied to the latest content.
/// </summary>
/// <remarks>
/// The change must depend only on what it reads from the store it is given (it may run several times). Thread-safe:
/// every call works on its own store objects.
/// </remarks>
public static class OptimisticRetry
{
    /// <summary>Default number of attempts before the last conflict is rethrown.</summary>
    public const int DefaultMaxAttempts = 1000;

    /// <summary>Runs <paramref name="change"/> on a freshly opened store and pushes it, retrying on conflicts.</summary>
    /// <param name="open">Opens and pulls the store (with <see cref="StoreOptions.Optimistic"/> set).</param>
    /// <param name="change">The read-modify-write; its result is returned once the push committed.</param>
    /// <param name="maxAttempts">Attempts before the last <see cref="StoreConflictException"/> is rethrown.</param>
    /// <param name="ct">Stops retrying.</param>
    /// <returns>The result of the attempt that committed.</returns>
    /// <exception cref="StoreConflictException">Every attempt conflicted.</exception>
    public static T Run<TStore, T>(Func<TStore> open, Func<TStore, T> change, int maxAttempts = DefaultMaxAttempts, CancellationToken ct = default)
        where TStore : StorageBase
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(change);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        for (int attempt = 1; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            using var store = open();
            try
            {
                var result = change(store);
                store.Push();
                return result;
            }
            catch (StoreConflictException) when (attempt < maxAttempts)
            {
                Thread.Sleep(Pause(attempt));
            }
        }
    }

    /// <summary>Runs <paramref name="change"/> on a freshly opened store and pushes it, retrying on conflicts.</summary>
    /// <inheritdoc cref="Run{TStore, T}(Func{TStore}, Func{TStore, T}, int, CancellationToken)"/>
    public static void Run<TStore>(Func<TStore> open, Action<TStore> change, int maxAttempts = DefaultMaxAttempts, CancellationToken ct = default)
        where TStore : StorageBase
    {
        ArgumentNullException.ThrowIfNull(change);
        Run(open, s => { change(s); return true; }, maxAttempts, ct);
    }

    /// <summary>Asynchronous <see cref="Run{TStore, T}(Func{TStore}, Func{TStore, T}, int, CancellationToken)"/>: opens with <paramref name="openAsync"/>, pauses without blocking.</summary>
    /// <inheritdoc cref="Run{TStore, T}(Func{TStore}, Func{TStore, T}, int, CancellationToken)"/>
    public static async Task<T> RunAsync<TStore, T>(Func<CancellationToken, Task<TStore>> openAsync, Func<TStore, T> change, int maxAttempts = DefaultMaxAttempts, CancellationToken ct = default)
        where TStore : StorageBase
    {
        ArgumentNullException.ThrowIfNull(openAsync);
        ArgumentNullException.ThrowIfNull(change);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        for (int attempt = 1; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            var store = await openAsync(ct).ConfigureAwait(false);
            try
            {
                var result = change(store);
                store.Push();
                return result;
            }
            catch (StoreConflictException) when (attempt < maxAttempts)
            {
            }
            finally
            {
                store.Dispose();
            }
            await Task.Delay(Pause(attempt), ct).ConfigureAwait(false);
        }
    }

    /// <summary>A random pause that grows with the attempt number up to about 50 ms, so that writers that collided spread out.</summary>
    private static TimeSpan Pause(int attempt) =>
        TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * Math.Min(50, 0.5 * (1 << Math.Min(attempt, 7))));
}
