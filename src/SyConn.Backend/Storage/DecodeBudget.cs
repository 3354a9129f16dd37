namespace SyConn.Backend.Storage;

/// <summary>
/// The running total of LZ4 bytes that one bulk read of a store (<c>GetMany</c>, one enumeration) decodes, bounded by
/// <see cref="ReadLimits.MaxStoreBytes"/>. Each entry's declared size (the sum of its blocks' size prefixes) is taken
/// before the entry is decoded, so the entry at which the total passes the limit is refused before it allocates.
/// </summary>
/// <remarks>
/// The budget of the running call is ambient (<see cref="Current"/>, flowing into the worker threads of the call's
/// parallel loop), so that entry decoders deep inside the typed stores see it without a parameter of their own.
/// Thread-safe.
/// </remarks>
internal sealed class DecodeBudget(ReadLimits limits)
{
    private static readonly AsyncLocal<DecodeBudget?> Ambient = new();

    private long _used;

    /// <summary>The limits of the store the call reads.</summary>
    public ReadLimits Limits { get; } = limits;

    /// <summary>The bytes taken so far.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>The budget of the bulk read running on this thread (or its parallel loop), or null.</summary>
    public static DecodeBudget? Current => Ambient.Value;

    /// <summary>Makes <paramref name="budget"/> current until the returned scope is disposed.</summary>
    public static Scope Enter(DecodeBudget budget) => new(budget);

    /// <summary>Takes <paramref name="bytes"/> about to be decoded for the entry at <paramref name="where"/> (file and key).</summary>
    /// <exception cref="InvalidDataException">The running total would pass <see cref="ReadLimits.MaxStoreBytes"/>.</exception>
    public void Take(long bytes, string where)
    {
        long total = Interlocked.Add(ref _used, bytes);
        if (total > Limits.MaxStoreBytes)
            throw new InvalidDataException(
                $"{where}: decoding this entry ({bytes} bytes) would bring the LZ4 bytes decoded from the store in this call to {total}, " +
                $"more than the read limit of {Limits.MaxStoreBytes} bytes (ReadLimits.{nameof(ReadLimits.MaxStoreBytes)})");
    }

    /// <summary>Restores the budget that was current before <see cref="Enter"/>.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly DecodeBudget? _previous;

        internal Scope(DecodeBudget budget)
        {
            _previous = Ambient.Value;
            Ambient.Value = budget;
        }

        /// <inheritdoc/>
        public void Dispose() => Ambient.Value = _previous;
    }
}
