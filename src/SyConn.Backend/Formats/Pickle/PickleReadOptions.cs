namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// Safety limits of <see cref="Pickle.Load(ReadOnlyMemory{byte}, PickleReadOptions?, string?)"/>. The defaults
/// accept every SyConn store file while keeping a hostile file from exhausting memory or the call stack.
/// </summary>
/// <remarks>Immutable after construction; safe to share between threads.</remarks>
public sealed record PickleReadOptions
{
    /// <summary>The defaults.</summary>
    public static readonly PickleReadOptions Default = new();

    /// <summary>Maximum nesting of containers and MARKs (default 1000, like Python's recursion limit).</summary>
    public int MaxDepth { get; init; } = 1000;

    /// <summary>Maximum number of memo entries (default 2^26).</summary>
    public int MaxMemoEntries { get; init; } = 1 << 26;

    /// <summary>Maximum number of items put into containers and array elements of zero-size dtypes, over the whole pickle (default 2^28).</summary>
    public long MaxTotalElements { get; init; } = 1L << 28;

    /// <summary>Maximum byte length of one LONG1/LONG4 integer (default 1 MiB).</summary>
    public int MaxIntBytes { get; init; } = 1 << 20;
}
