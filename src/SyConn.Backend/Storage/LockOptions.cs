namespace SyConn.Backend.Storage;

/// <summary>
/// How <see cref="FileLock"/> waits for a lock. The names and defaults are those of SyConn's
/// <c>FSBase(max_delay=100, timeout=1000, max_nb_attempts=100)</c>; the meaning is kept where it matters
/// (we give up after <see cref="Timeout"/>) and the waiting itself is faster than upstream's.
/// </summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed record LockOptions
{
    /// <summary>The defaults: 1000 s timeout, 100 attempts, 100 s maximum delay (upstream's values).</summary>
    public static LockOptions Default { get; } = new();

    /// <summary>
    /// Total time to wait for the lock before <see cref="StorageLockTimeoutException"/> is thrown
    /// (upstream: <c>timeout</c>, default 1000 s). <see cref="TimeSpan.Zero"/> tries once;
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits until the lock is free or the wait is
    /// cancelled. Time spent waiting for another holder in this process counts against it too.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1000);

    /// <summary>
    /// Upstream splits <see cref="Timeout"/> into this many acquire attempts of
    /// <c>timeout / max_nb_attempts</c> each (default 100). The total time is what users observe, so
    /// <see cref="FileLock"/> keeps trying through the whole <see cref="Timeout"/> without the pauses
    /// between attempts; the value is accepted for compatibility and must be at least 1.
    /// </summary>
    public int MaxNbAttempts { get; init; } = 100;

    /// <summary>
    /// Upper bound on the pause between two tries (upstream: <c>max_delay</c>, default 100 s; upstream
    /// sleeps 0.1 s, 0.2 s, ... up to it). <see cref="FileLock"/> does not pause between tries: it waits in
    /// the kernel (<c>fcntl(F_OFD_SETLKW)</c>), which wakes it when the lock is released, so any value is
    /// an upper bound that is always met. The value is accepted for compatibility and must not be negative.
    /// </summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for values that make no sense.</summary>
    public void Validate()
    {
        if (Timeout < TimeSpan.Zero && Timeout != System.Threading.Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "The lock timeout must be zero or positive (or Timeout.InfiniteTimeSpan).");
        if (Timeout != System.Threading.Timeout.InfiniteTimeSpan && Timeout.TotalMilliseconds > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "The lock timeout is too large; use Timeout.InfiniteTimeSpan to wait without limit.");
        if (MaxNbAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxNbAttempts), MaxNbAttempts, "max_nb_attempts must be at least 1.");
        if (MaxDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(MaxDelay), MaxDelay, "max_delay must not be negative.");
    }
}
