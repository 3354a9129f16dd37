using System.Collections;
using System.Globalization;
using System.IO.Compression;
using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>VoxelStorageLazyLoading</c>: arrays in a numpy <c>.npz</c> file, one member
/// <c>str(key) + ".npy"</c> per key, read lazily. Unlike upstream, an opened file can be modified: changes stay
/// in memory until <see cref="Push"/> rewrites the whole file atomically.
/// </summary>
/// <remarks>
/// Keys are ints (member names are decimal strings); a member whose name is not an int is exposed as a
/// str key. <c>overwrite: true</c> starts empty but deletes nothing until <see cref="Push"/> (upstream deletes
/// the file at once). Not thread-safe; no locking (as upstream).
/// </remarks>
public sealed class VoxelStorageLazyLoading : IDisposable, IEnumerable<KeyValuePair<StoreKey, NdArray>>
{
    private NpzReader? _reader;
    private readonly List<string> _order = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NdArray> _pending = new(StringComparer.Ordinal);
    private bool _dirty;

    /// <summary>Opens the npz at <paramref name="path"/> (<c>.npz</c> is appended if missing); a missing file gives an empty store.</summary>
    /// <param name="path">The npz path.</param>
    /// <param name="overwrite">Start empty even if the file exists (it is replaced on push).</param>
    /// <param name="durable">Push fsyncs the file and folder (see <see cref="StoreOptions.Durable"/>).</param>
    /// <param name="compressionLevel">Deflate level of push: <see cref="CompressionLevel.Optimal"/> is zlib's default
    /// level, as <c>numpy.savez_compressed</c> uses; <see cref="CompressionLevel.Fastest"/> pushes several times faster
    /// and writes files about a quarter larger; numpy reads both.</param>
    public VoxelStorageLazyLoading(string path, bool overwrite = false, bool durable = true, CompressionLevel compressionLevel = CompressionLevel.Optimal)
    {
        CompressionLevel = compressionLevel;
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path.EndsWith(".npz", StringComparison.Ordinal) ? path : path + ".npz");
        Durable = durable;
        if (!overwrite && File.Exists(Path)) Open();
        else _dirty = overwrite && File.Exists(Path);
    }

    private void Open()
    {
        _reader = NpzFile.OpenRead(Path);
        foreach (var k in _reader.Keys)
            if (_names.Add(k)) _order.Add(k);
    }

    /// <summary>The npz path.</summary>
    public string Path { get; }

    /// <summary>The deflate level of push.</summary>
    public CompressionLevel CompressionLevel { get; }

    /// <summary>Whether push fsyncs.</summary>
    public bool Durable { get; }

    /// <summary>True when there are changes not yet pushed.</summary>
    public bool IsDirty => _dirty;

    /// <summary>Number of arrays.</summary>
    public int Count => _order.Count;

    /// <summary>The member name of a key (<c>str(key)</c>).</summary>
    public static string MemberName(StoreKey key) => key.PythonValue switch
    {
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger b => b.ToString(CultureInfo.InvariantCulture),
        string s => s,
        _ => throw new ArgumentException($"key {key} cannot name an npz member"),
    };

    private static StoreKey KeyOf(string name) =>
        BigInteger.TryParse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? (StoreKey)v : (StoreKey)name;

    /// <summary>The keys in file order (new keys last).</summary>
    public IEnumerable<StoreKey> Keys => _order.Select(KeyOf);

    /// <summary>True if the key has an array.</summary>
    public bool ContainsKey(StoreKey key) => _names.Contains(MemberName(key));

    /// <summary>Reads or sets the array of a key.</summary>
    /// <exception cref="KeyNotFoundException">Reading a missing key.</exception>
    public NdArray this[StoreKey key]
    {
        get => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"key {key} is not in {Path}");
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Objects is not null) throw new ArgumentException("object arrays cannot be stored in an npz (numpy reads them only with allow_pickle)");
            var name = MemberName(key);
            _pending[name] = value;
            if (_names.Add(name)) _order.Add(name);
            _dirty = true;
        }
    }

    /// <summary>The array of a key, if present.</summary>
    public bool TryGetValue(StoreKey key, out NdArray value)
    {
        var name = MemberName(key);
        if (_pending.TryGetValue(name, out value!)) return true;
        if (_reader is not null && _names.Contains(name)) { value = _reader.Read(name); return true; }
        value = null!;
        return false;
    }

    /// <summary>Removes a key (from the file at the next push).</summary>
    public bool Remove(StoreKey key)
    {
        var name = MemberName(key);
        if (!_names.Remove(name)) return false;
        _order.Remove(name);
        _pending.Remove(name);
        _dirty = true;
        return true;
    }

    /// <summary>Writes all arrays (to <paramref name="dest"/> if given) as <c>numpy.savez_compressed</c> would, atomically.</summary>
    public void Push(string? dest = null)
    {
        var target = dest is null ? Path : System.IO.Path.GetFullPath(dest);
        // Members are read lazily from the current file while the new one is written beside it.
        var items = _order.Select(n => new KeyValuePair<string, NdArray>(n, _pending.TryGetValue(n, out var a) ? a : _reader!.Read(n)));
        AtomicFile.Write(target, s => Npz.Write(s, items, compress: true, CompressionLevel), Durable);
        if (dest is not null) return;
        _reader?.Dispose();
        _reader = null;
        _pending.Clear();
        _order.Clear();
        _names.Clear();
        Open();
        _dirty = false;
    }

    /// <summary>Closes the file (upstream's <c>close</c>). Unpushed changes are dropped.</summary>
    public void Close() => Dispose();

    /// <inheritdoc/>
    public void Dispose()
    {
        _reader?.Dispose();
        _reader = null;
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<StoreKey, NdArray>> GetEnumerator()
    {
        foreach (var n in _order.ToList()) yield return new(KeyOf(n), this[KeyOf(n)]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
