namespace SyConn.Backend.Stores;

/// <summary>
/// A least-recently-used cache of loaded shards, bounded by their total size in bytes.
/// Loading happens under the cache's lock, so at most one shard is read at a time (the HDF5 reader
/// underneath is not safe for concurrent use) and a shard requested by several threads is read once.
/// A shard larger than the whole budget is handed out but not kept.
/// </summary>
internal sealed class ShardCache
{
    private readonly object _gate = new();
    private readonly long _budget;
    private readonly Dictionary<string, LinkedListNode<Entry>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _lru = new();
    private long _bytes;

    private sealed record Entry(string Key, byte[] Data);

    public ShardCache(long budgetBytes) => _budget = budgetBytes;

    /// <summary>Bytes currently held.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Number of shards currently held.</summary>
    public int Count { get { lock (_gate) return _map.Count; } }

    /// <summary>The shard stored under <paramref name="key"/>, loaded with <paramref name="load"/> when absent.</summary>
    public byte[] Get(string key, Func<byte[]> load)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                return node.Value.Data;
            }
            var data = load();
            if (data.LongLength > _budget) return data;
            while (_bytes + data.LongLength > _budget && _lru.Last is { } last)
            {
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Data.LongLength;
            }
            _map[key] = _lru.AddFirst(new Entry(key, data));
            _bytes += data.LongLength;
            return data;
        }
    }

    /// <summary>The shard stored under <paramref name="key"/> if it is cached (marks it as recently used).</summary>
    public bool TryGet(string key, out byte[] data)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                data = node.Value.Data;
                return true;
            }
        }
        data = [];
        return false;
    }

    /// <summary>Drops every cached shard.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _map.Clear();
            _lru.Clear();
            _bytes = 0;
        }
    }
}
