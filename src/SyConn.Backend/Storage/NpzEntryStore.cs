using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.Compression;
using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The filesystem entry store of SyConn's <c>VoxelStorageLazyLoading</c>: one numpy array per key in an
/// <c>.npz</c> archive, member <c>str(key) + ".npy"</c>, read lazily (<see cref="Load"/> reads only the zip's
/// directory; <see cref="TryRead"/> inflates one member). Every write rewrites the whole archive as
/// <c>numpy.savez_compressed</c> does, atomically, taking the members that did not change from the old file.
/// </summary>
/// <remarks>
/// <para>Keys: a member named by a decimal integer in Python's own spelling (<c>10</c>, <c>-3</c>) is that int;
/// any other member name (<c>007</c>, <c>abc</c>) is a str key, so every member stays reachable and is written
/// back under its own name. A str key that spells an int (<c>"5"</c>) is refused on write: its member would be
/// read back as the int 5, another key (upstream writes it and reads it back as the int).</para>
/// <para>Locking (only when the store asks for it; upstream never locks npz files) uses the same
/// <c>.&lt;name&gt;.lk</c> scheme as the pickle stores. Side stores are <c>&lt;stem&gt;.NAME.npz</c>.</para>
/// <para>Thread-safety: see <see cref="IEntryStore"/>; member reads are serialised internally.</para>
/// </remarks>
public sealed class NpzEntryStore : IEntryStore
{
    private NpzReader? _reader;
    private readonly List<object> _keys = [];
    private readonly Dictionary<object, string> _members = new(PyEquality.Comparer);

    /// <summary>An entry store over the archive at <paramref name="path"/> (made absolute; nothing is read yet).</summary>
    /// <param name="path">The <c>.npz</c> file.</param>
    /// <param name="compressionLevel">Deflate level of writes: <see cref="CompressionLevel.Optimal"/> gives files
    /// within 5% of numpy's (zlib level 6) several times faster, on all cores (see <see cref="NpzWriter"/>);
    /// <see cref="CompressionLevel.Fastest"/> writes faster still, with much larger files; numpy reads both.</param>
    /// <exception cref="ArgumentException">The path is empty or names a folder.</exception>
    public NpzEntryStore(string path, CompressionLevel compressionLevel = CompressionLevel.Optimal)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetFileName(Path).Length == 0) throw new ArgumentException($"an npz path must name a file, not a folder: '{path}'", nameof(path));
        CompressionLevel = compressionLevel;
    }

    /// <summary>The absolute path of the archive.</summary>
    public string Path { get; }

    /// <summary>The deflate level of writes.</summary>
    public CompressionLevel CompressionLevel { get; }

    /// <inheritdoc/>
    public string Location => Path;

    /// <inheritdoc/>
    public EntryStoreKind Kind => EntryStoreKind.Npz;

    /// <inheritdoc/>
    public string? Folder => System.IO.Path.GetDirectoryName(Path);

    /// <summary>False: every read inflates the member anew.</summary>
    public bool StableReads => false;

    /// <inheritdoc/>
    public bool Exists => _reader is not null;

    /// <inheritdoc/>
    public void Load(StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Close();
        NpzReader reader;
        try
        {
            reader = NpzFile.OpenRead(Path, options.Limits);
        }
        catch (FileNotFoundException)
        {
            return; // a missing store is empty
        }
        foreach (var name in reader.Keys)
        {
            var key = KeyOfMember(name);
            if (_members.TryAdd(key, name)) _keys.Add(key);
        }
        _reader = reader;
    }

    /// <summary>The member name (without <c>.npy</c>) of a key: <c>str(key)</c>.</summary>
    /// <exception cref="ArgumentException">The key is neither an int nor a str, or a str that spells an int (its member
    /// would read back as that int, another key).</exception>
    public static string MemberName(StoreKey key) => key.PythonValue switch
    {
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger b => b.ToString(CultureInfo.InvariantCulture),
        string s when KeyOfMember(s) is string => s,
        string s => throw new ArgumentException($"str key '{s}' cannot name an npz member: the member '{s}' is read back as the int {s}; use the int key"),
        _ => throw new ArgumentException($"key {key} cannot name an npz member (only ints and strs can)"),
    };

    /// <summary>The key of a member name: an int when the name is Python's spelling of one, else the name as a str.</summary>
    public static object KeyOfMember(string name)
    {
        if (!IsPythonInt(name)) return name;
        return name.Length <= 18
            ? long.Parse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
            : PyInt.From(BigInteger.Parse(name, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
    }

    /// <summary>True for <c>str(n)</c> of an int n: an optional '-', then "0" or digits without a leading zero (not "-0").</summary>
    private static bool IsPythonInt(string s)
    {
        int i = s.StartsWith('-') ? 1 : 0;
        if (s.Length == i) return false;
        if (s[i] == '0') return s.Length == 1;
        for (int j = i; j < s.Length; j++)
            if (!char.IsAsciiDigit(s[j])) return false;
        return true;
    }

    /// <inheritdoc/>
    public int Count => _keys.Count;

    /// <inheritdoc/>
    public IEnumerable<object> Keys => _keys;

    /// <inheritdoc/>
    public bool ContainsKey(StoreKey key) => TryMember(key, out _);

    private bool TryMember(StoreKey key, [MaybeNullWhen(false)] out string member)
    {
        // Keys are compared as Python compares them: the str "5" is not the int 5, whose member is "5".
        if (key.PythonValue is not (long or BigInteger or string)) { member = null; return false; }
        return _members.TryGetValue(key.PythonValue, out member);
    }

    /// <inheritdoc/>
    public bool TryRead(StoreKey key, [MaybeNullWhen(false)] out object entry)
    {
        if (_reader is null || !TryMember(key, out var member)) { entry = null; return false; }
        entry = _reader.Read(member);
        return true;
    }

    /// <inheritdoc/>
    public IEnumerable<KeyValuePair<object, object>> ReadAll()
    {
        var reader = _reader;
        if (reader is null) yield break;
        foreach (var k in _keys.ToList()) yield return KeyValuePair.Create(k, (object)reader.Read(_members[k]));
    }

    /// <inheritdoc/>
    public void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(removed);
        ArgumentNullException.ThrowIfNull(changed);
        var gone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var k in removed) gone.Add(MemberName(StoreKey.FromPython(k)));
        var order = new List<string>(_keys.Count + changed.Count);
        var fresh = new Dictionary<string, NdArray>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var k in _keys)
        {
            var name = _members[k];
            if (!gone.Contains(name) && seen.Add(name)) order.Add(name);
        }
        foreach (var (k, v) in changed)
        {
            var name = MemberName(StoreKey.FromPython(k));
            fresh[name] = Array(k, v);
            if (seen.Add(name)) order.Add(name);
        }
        var reader = _reader;
        Write(order.Select(n => KeyValuePair.Create(n, fresh.TryGetValue(n, out var a) ? a : reader!.Read(n))), options);
    }

    /// <inheritdoc/>
    public void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var byName = new Dictionary<string, NdArray>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (k, v) in entries)
        {
            var name = MemberName(StoreKey.FromPython(k));
            if (!byName.ContainsKey(name)) order.Add(name);
            byName[name] = Array(k, v);
        }
        Write(order.Select(n => KeyValuePair.Create(n, byName[n])), options);
    }

    private NdArray Array(object key, object value) => value switch
    {
        NdArray { Objects: not null } => throw new ArgumentException($"{Path}, key {StoreKey.FromPython(key)}: object arrays cannot be stored in an npz (numpy reads them only with allow_pickle)"),
        NdArray a => a,
        _ => throw new ArgumentException($"{Path}, key {StoreKey.FromPython(key)}: an npz member must be an ndarray, not a {value?.GetType().Name ?? "null"}"),
    };

    private void Write(IEnumerable<KeyValuePair<string, NdArray>> members, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        EnsureWritable();
        // Unchanged members are read from the current file while the new one is written beside it.
        AtomicFile.Write(Path, s => Npz.Write(s, members, compress: true, CompressionLevel), options.Durable, deferWriteBack: options.DeferWriteBack);
        Load(options);
    }

    /// <inheritdoc/>
    public IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default) =>
        FileLock.Acquire(LockPaths.ForStore(Path), options, ct);

    /// <inheritdoc/>
    public Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default) =>
        FileStoreFiles.AcquireLockAsync(Path, options, ct);

    /// <inheritdoc/>
    public IEntryStore OpenSideStore(string name) => new NpzEntryStore(FileStoreFiles.SidePath(Path, name, voxelCacheIsSibling: false), CompressionLevel);

    /// <inheritdoc/>
    public void EnsureWritable() => FileStoreFiles.EnsureFolder(Path);

    /// <inheritdoc/>
    public string MoveAside()
    {
        Close();
        return FileStoreFiles.MoveAside(Path);
    }

    private void Close()
    {
        _reader?.Dispose();
        _reader = null;
        _keys.Clear();
        _members.Clear();
    }

    /// <summary>Closes the archive.</summary>
    public void Dispose() => Close();

    /// <inheritdoc/>
    public override string ToString() => $"NpzEntryStore({Path})";
}
