using System.IO.Compression;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// Reads a numpy <c>.npz</c> archive (a zip of <c>.npy</c> members, stored or deflated, including numpy's
/// ZIP64 local extra fields) like numpy's lazy <c>NpzFile</c>, with O(1) member lookup.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Read"/> may be called from several threads. Members of an archive opened from a file
/// (<c>NpzFile.OpenRead</c>) are read and inflated in parallel (positional reads); those of a stream one at a
/// time. A caller that reads the keys of a file archive one after the other in archive order gets the members that
/// follow inflated on another core, at most 4,096 members or 16 MB ahead; each array is handed out once, as if
/// read then. Dispose once, when no read runs.
/// </remarks>
public sealed class NpzReader : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly ZipDirectory _zip;
    private readonly Dictionary<string, ZipMember> _byMember = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ZipMember> _byKey = new(StringComparer.Ordinal);
    private readonly List<string> _keys = [];
    private readonly string? _name;
    private readonly ReadLimits _limits;
    private readonly Lock _gate = new();
    private long _decoded;

    // Reading ahead of a caller that reads the keys in archive order (file archives only): the members in _keys order,
    // the position of each central entry among them (-1: not a key's member), and the arrays read ahead, each handed
    // to the first caller that asks for it.
    private readonly ZipMember[] _ordered = [];
    private readonly int[] _position = [];
    private readonly long[] _sizesBefore = [];
    private readonly NdArray?[] _kept = [];
    private readonly Storage.ReadAhead? _ahead;

    // At most this many members or inflated bytes are held ahead of the caller.
    private const int AheadMembers = 4096, AheadBytes = 16 << 20;

    /// <summary>Opens an archive from <paramref name="stream"/> (must be seekable).</summary>
    /// <param name="stream">The archive.</param>
    /// <param name="name">A name for error messages (e.g. the path).</param>
    /// <param name="leaveOpen">Keep <paramref name="stream"/> open on dispose.</param>
    /// <exception cref="InvalidDataException">The stream is not a readable zip archive, a member name could name a path
    /// (it holds a path separator, a NUL or is <c>..</c>), or the declared sizes exceed <see cref="ReadLimits.Default"/>.</exception>
    public NpzReader(Stream stream, string? name = null, bool leaveOpen = false) : this(stream, name, leaveOpen, null)
    {
    }

    /// <summary>Opens an archive from <paramref name="stream"/> (must be seekable) with the given limits.</summary>
    /// <param name="stream">The archive.</param>
    /// <param name="name">A name for error messages (e.g. the path).</param>
    /// <param name="leaveOpen">Keep <paramref name="stream"/> open on dispose.</param>
    /// <param name="limits">Size limits (member and total inflated sizes, array sizes, bytes read); null for <see cref="ReadLimits.Default"/>.</param>
    /// <exception cref="InvalidDataException">The stream is not a readable zip archive, a member name could name a path, or a limit is exceeded.</exception>
    public NpzReader(Stream stream, string? name, bool leaveOpen, ReadLimits? limits) : this(stream, name, leaveOpen, limits, null)
    {
    }

    /// <summary>As the public constructor; <paramref name="positional"/> (the same bytes, for positional reads from
    /// several threads, such as a file's) lets members be read in one go, in parallel and ahead of the caller.</summary>
    internal NpzReader(Stream stream, string? name, bool leaveOpen, ReadLimits? limits, IPositionalSource? positional)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _name = name;
        _stream = stream;
        _leaveOpen = leaveOpen;
        _limits = (limits ?? ReadLimits.Default).Validate();
        string label = ".npz " + (name ?? "(stream)");
        try
        {
            _zip = ZipDirectory.Read(stream, label, _limits, m => CheckMemberName(m, label), positional: positional);
        }
        catch
        {
            if (!leaveOpen) stream.Dispose();
            throw;
        }
        foreach (var entry in _zip.Members)
        {
            string member = entry.Name;
            string key = member.EndsWith(".npy", StringComparison.Ordinal) ? member[..^4] : member;
            // Like Python's zipfile, a repeated member name refers to the last entry of that name.
            if (!_byKey.ContainsKey(key)) _keys.Add(key);
            _byMember[member] = entry;
            _byKey[key] = entry;
        }
        if (_zip.ReadsConcurrently && _keys.Count > Storage.ReadAhead.After)
        {
            _ordered = [.. _keys.Select(k => _byKey[k])];
            _position = new int[_zip.Members.Count];
            Array.Fill(_position, -1);
            _sizesBefore = new long[_ordered.Length + 1];
            for (int i = 0; i < _ordered.Length; i++)
            {
                _position[_ordered[i].Index] = i;
                _sizesBefore[i + 1] = _sizesBefore[i] + _ordered[i].UncompressedSize;
            }
            _kept = new NdArray?[_ordered.Length];
            _ahead = new Storage.ReadAhead(_ordered.Length, ReadAheadOf, AheadMembers,
                (cursor, next) => _sizesBefore[next] - _sizesBefore[cursor + 1], AheadBytes);
        }
    }

    // The worker's read of member i: kept for the caller, who counts it against the limits when it takes it. Nothing
    // is read that would bring the count over MaxStoreBytes; the caller's own read reports that.
    private void ReadAheadOf(int i)
    {
        if (Volatile.Read(ref _kept[i]) is not null) return;
        var entry = _ordered[i];
        if (Volatile.Read(ref _decoded) + entry.UncompressedSize > _limits.MaxStoreBytes) throw new InvalidDataException("over the limit");
        Volatile.Write(ref _kept[i], ReadWhole(entry, Where(entry)));
    }

    // A member of a file archive: read and inflated in one go; the array is a view of the inflated member.
    private NdArray ReadWhole(ZipMember entry, string where) => Npy.ReadShared(_zip.ReadWhole(entry), where, _limits);

    /// <summary>How many arrays read ahead wait for a caller, and whether no worker reads ahead (for tests).</summary>
    internal (int Held, bool Idle) Ahead => (_kept.Count(k => k is not null), _ahead?.Idle ?? true);

    private string Where(ZipMember entry) => $"{_name ?? "(stream)"} member {ZipDirectory.Printable(entry.Name)}";

    /// <summary>
    /// Members become keys, and keys may become file names elsewhere (exports, side stores): a member whose name is
    /// empty, holds a path separator or a NUL, or is <c>.</c>/<c>..</c> (with or without <c>.npy</c>) is refused.
    /// </summary>
    private static void CheckMemberName(ZipMember m, string label)
    {
        string n = m.Name;
        string key = n.EndsWith(".npy", StringComparison.Ordinal) ? n[..^4] : n;
        if (n.Length == 0 || n.IndexOfAny(['/', '\\', '\0']) >= 0 || key is "" or "." or ".." || n.Any(char.IsControl))
            throw new InvalidDataException(
                $"{label}: zip: member '{ZipDirectory.Printable(n)}' (central directory entry {m.Index}) is not a plain member name: npz member names must not be empty, hold '/', '\\', NUL or control characters, or be '.' or '..'");
    }

    /// <summary>Member names with a trailing <c>.npy</c> removed, in archive order (numpy's <c>NpzFile.files</c>).</summary>
    public IReadOnlyList<string> Keys => _keys;

    /// <summary>True if <paramref name="name"/> is a key (or a full member name), like numpy's <c>name in npz</c>.</summary>
    public bool Contains(string name) => _byMember.ContainsKey(name) || _byKey.ContainsKey(name);

    /// <summary>Reads the array stored as <paramref name="name"/> (a key or a full member name).</summary>
    /// <remarks>The whole member is read and its CRC-32 checked before the array is returned; bytes after the array
    /// data are ignored, as numpy does. Every read counts towards <see cref="ReadLimits.MaxStoreBytes"/> of this reader.</remarks>
    /// <exception cref="KeyNotFoundException">No such member.</exception>
    /// <exception cref="InvalidDataException">The member is not a valid .npy file of a supported dtype, its data is damaged (CRC-32,
    /// sizes, deflate stream), its local header disagrees with the central directory, or a limit is exceeded.</exception>
    public NdArray Read(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // numpy looks up the full member name first, then the name with .npy appended.
        if (!_byMember.TryGetValue(name, out var entry) && !_byKey.TryGetValue(name, out entry))
            throw new KeyNotFoundException($".npz {_name ?? "(stream)"}: no member '{name}' (or '{name}.npy')");
        string where = Where(entry);
        lock (_gate)
        {
            if (_decoded + entry.UncompressedSize > _limits.MaxStoreBytes)
                throw new InvalidDataException($".npz {where}: " + ReadLimits.Exceeds("reading it would bring the bytes read through this reader to a total", _decoded + entry.UncompressedSize, _limits.MaxStoreBytes, nameof(ReadLimits.MaxStoreBytes)));
            _decoded += entry.UncompressedSize;
            if (!_zip.ReadsConcurrently) return ReadStreamed(entry, where);
        }
        // A file archive: one positional read and a one-shot inflate per member, outside the lock; the array is a view
        // of the inflated member. A member read ahead is handed out once and then read anew.
        if (_ahead is not null && _position[entry.Index] is int i and >= 0)
        {
            _ahead.Noted(i);
            if (Interlocked.Exchange(ref _kept[i], null) is { } kept) return kept;
        }
        return ReadWhole(entry, where);
    }

    private NdArray ReadStreamed(ZipMember entry, string where)
    {
        using var s = _zip.Open(entry);
        var array = Npy.Read(s, where, _limits, entry.UncompressedSize);
        // The rest of the member (numpy ignores it) is read too, so that its CRC-32 is checked.
        s.CopyTo(Stream.Null);
        return array;
    }

    /// <summary>Reads every member in archive order.</summary>
    /// <exception cref="InvalidDataException">A member is not a valid .npy file of a supported dtype, or is damaged.</exception>
    public OrderedDictionary<string, NdArray> ReadAll()
    {
        var result = new OrderedDictionary<string, NdArray>(StringComparer.Ordinal);
        foreach (var k in _keys) result[k] = Read(k);
        return result;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _ahead?.Stop();
        if (!_leaveOpen) _stream.Dispose();
    }
}

/// <summary>
/// Writes a numpy <c>.npz</c> archive like <c>numpy.savez_compressed</c> (deflated members) or
/// <c>numpy.savez</c> (stored members): one member <c>&lt;name&gt;.npy</c> per array, in the order added.
/// Members are deflated on all cores while earlier ones are written, in order.
/// </summary>
/// <remarks>
/// <para>Levels: <see cref="CompressionLevel.Optimal"/> (the default) is the fastest deflate that keeps files
/// within 5% of numpy's (zlib level 6) on voxel coordinates: libdeflate level 3 when Debian's
/// <c>libdeflate.so.0</c> is installed (unless the environment variable <c>SYCONN_NPZ_LIBDEFLATE</c> is
/// <c>0</c>), else System.IO.Compression's zlib-ng level 4. <see cref="CompressionLevel.Fastest"/> (zlib-ng 1)
/// is faster still with much larger files; <see cref="CompressionLevel.SmallestSize"/> is zlib-ng 9. numpy reads
/// them all.</para>
/// <para>Output is deterministic: the same arrays, level, deflate library and timestamp give the same bytes,
/// however the threads run. The archive is complete only after <see cref="Dispose"/>. Arrays are read by worker
/// threads at any time until then: do not modify an added array before. Not thread-safe: use from one thread.
/// ZIP64 records are written only where sizes need them (numpy forces them into every local header); numpy
/// reads the archive either way.</para>
/// </remarks>
public sealed class NpzWriter : IDisposable
{
    private readonly ZipMemberWriter _zip;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Starts an archive on <paramref name="stream"/>.</summary>
    /// <param name="stream">Receives the archive (need not be seekable).</param>
    /// <param name="compress">Deflate the members (<c>savez_compressed</c>); false stores them (<c>savez</c>).</param>
    /// <param name="leaveOpen">Keep <paramref name="stream"/> open on dispose.</param>
    /// <param name="level">Deflate level; see the remarks.</param>
    /// <param name="timestamp">The members' modification time in the zip (local time, 2-second resolution);
    /// default the time of writing, as numpy. Pass one for byte-identical archives of the same arrays.</param>
    public NpzWriter(Stream stream, bool compress = true, bool leaveOpen = false, CompressionLevel level = CompressionLevel.Optimal, DateTime? timestamp = null)
        : this(stream, compress, leaveOpen, level, timestamp, DeflateEngine.Auto, 0)
    {
    }

    /// <summary>As the public constructor, choosing the deflate implementation and the number of worker threads (0 = one per core).</summary>
    internal NpzWriter(Stream stream, bool compress, bool leaveOpen, CompressionLevel level, DateTime? timestamp, DeflateEngine engine, int maxParallelism)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _zip = new ZipMemberWriter(stream, compress, level, leaveOpen, timestamp, engine, maxParallelism);
    }

    /// <summary>What <see cref="CompressionLevel.Optimal"/> deflates with in this process: <c>"libdeflate 3"</c> or
    /// <c>"zlib-ng 4"</c> (System.IO.Compression).</summary>
    public static string OptimalDeflate =>
        MemberDeflater.UsesLibDeflate(CompressionLevel.Optimal, DeflateEngine.Auto)
            ? $"libdeflate {MemberDeflater.LibDeflateOptimalLevel}"
            : $"zlib-ng {MemberDeflater.ZlibNgOptimalLevel}";

    /// <summary>Adds <paramref name="array"/> as member <c>&lt;name&gt;.npy</c>.</summary>
    /// <exception cref="ArgumentException">The name is empty or already used, or the array cannot be written as .npy.</exception>
    /// <exception cref="InvalidOperationException">The archive is finished, or failed (an earlier member could not be written).</exception>
    public void Add(string name, NdArray array)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(array);
        if (_names.Contains(name))
            throw new ArgumentException($"member '{name}.npy' was already added", nameof(name));
        var (header, fortran) = Npy.BuildHeader(array);
        long length = header.Length + array.NBytes;
        if (length > Array.MaxLength)
            throw new ArgumentException($"member '{name}.npy' ({length} bytes) is too large for one .npy member here", nameof(array));
        _zip.Add(name + ".npy", (int)length, dest =>
        {
            header.CopyTo(dest);
            var data = dest[header.Length..];
            if (fortran || array.IsCContiguous) array.Data.Span.CopyTo(data);
            else array.ToCBytes().CopyTo(data);
        });
        _names.Add(name);
    }

    /// <summary>Finishes the archive (writes the remaining members and the central directory).</summary>
    /// <exception cref="IOException">Writing the stream failed (the archive is incomplete).</exception>
    public void Dispose() => _zip.Dispose();
}

/// <summary>Whole-archive conveniences over <see cref="NpzReader"/> and <see cref="NpzWriter"/> on streams; files: <c>SyConn.Backend.Storage.NpzFile</c>. Thread-safe.</summary>
public static class Npz
{
    /// <summary>Reads every array of the archive in <paramref name="stream"/> (seekable), in archive order.</summary>
    /// <exception cref="InvalidDataException">The stream is not a valid npz archive of supported arrays.</exception>
    public static OrderedDictionary<string, NdArray> ReadAll(Stream stream, string? name = null)
    {
        using var r = new NpzReader(stream, name, leaveOpen: true);
        return r.ReadAll();
    }

    /// <summary>Writes <paramref name="arrays"/> as an archive to <paramref name="stream"/> (left open).</summary>
    /// <exception cref="ArgumentException">A name repeats or an array cannot be written as .npy.</exception>
    /// <param name="stream">Receives the archive.</param>
    /// <param name="arrays">Member names (without <c>.npy</c>) and arrays, in archive order.</param>
    /// <param name="compress">Deflate the members (default); false stores them.</param>
    /// <param name="level">Deflate level; see <see cref="NpzWriter"/>.</param>
    /// <param name="timestamp">The members' zip timestamp; default now (see <see cref="NpzWriter"/>).</param>
    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, NdArray>> arrays, bool compress = true, CompressionLevel level = CompressionLevel.Optimal,
        DateTime? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        using var w = new NpzWriter(stream, compress, leaveOpen: true, level, timestamp);
        foreach (var (k, v) in arrays) w.Add(k, v);
    }
}
