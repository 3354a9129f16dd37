using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// Where one pull puts the pickled entries it reads: consecutive places in chunks of <see cref="ChunkBytes"/>, instead
/// of one array per entry. Entries of tens of KB each are too small for the large-object heap, so one array each made
/// the collector copy every pulled byte from generation to generation while the pull went on (a W1 pull: 83 MB in
/// 5,000 arrays, each copied twice); chunks are allocated there once and never moved. The first chunk is small and each
/// next one twice the size, up to <see cref="ChunkBytes"/>, so that pulling a store of a few rows (a locked
/// read-modify-write) allocates a few KB, not a large object each time (which brought full collections). Bigger
/// entries get an array of their own. Not thread-safe: each reader of a pull has its own.
/// </summary>
/// <remarks>
/// What the entries decode to may keep slices of a chunk (the bytes objects of a pickle are views of its bytes), so one
/// such value kept after the store is gone keeps its chunk, at most <see cref="ChunkBytes"/>, alive with it.
/// </remarks>
internal sealed class BtEntryArena
{
    /// <summary>The size of the biggest chunks.</summary>
    public const int ChunkBytes = 1 << 20;

    /// <summary>The size of the first chunk.</summary>
    public const int FirstChunkBytes = 16 << 10;

    /// <summary>Entries above this size get their own array, so that a chunk of full size loses at most a quarter at its end.</summary>
    public const int OwnArrayBytes = ChunkBytes / 4;

    private byte[]? _chunk;
    private int _used;
    private int _nextChunk = FirstChunkBytes;

    /// <summary>The bytea column <paramref name="ordinal"/> of the current row (not null), copied once, into this arena.</summary>
    public ReadOnlyMemory<byte> Read(NpgsqlDataReader r, int ordinal)
    {
        long length = r.GetBytes(ordinal, 0, null, 0, 0);
        if (length == 0) return ReadOnlyMemory<byte>.Empty;
        if (length > OwnArrayBytes)
        {
            // Bigger than any chunk place: Npgsql sizes and fills the array itself (fields are at most 1 GB).
            return r.GetFieldValue<byte[]>(ordinal);
        }
        int n = (int)length;
        if (_chunk is null || _chunk.Length - _used < n)
        {
            _chunk = GC.AllocateUninitializedArray<byte>(Math.Max(_nextChunk, n));
            _used = 0;
            _nextChunk = Math.Min(ChunkBytes, _nextChunk * 2);
        }
        int start = _used;
        long got = r.GetBytes(ordinal, 0, _chunk, start, n);
        if (got != n) throw new InvalidDataException($"the server sent {got:N0} of a field's {n:N0} bytes");
        _used += n;
        return new ReadOnlyMemory<byte>(_chunk, start, n);
    }
}
