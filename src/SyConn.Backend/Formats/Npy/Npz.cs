using System.IO.Compression;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// Reads a numpy <c>.npz</c> archive (a zip of <c>.npy</c> members, stored or deflated, including numpy's
/// ZIP64 local extra fields) like numpy's lazy <c>NpzFile</c>, with O(1) member lookup.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Read"/> may be called from several threads; calls are serialised
/// internally because the underlying zip reader is not thread-safe. Dispose once, when no read runs.
/// </remarks>
public sealed class NpzReader : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _byMember = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ZipArchiveEntry> _byKey = new(StringComparer.Ordinal);
    private readonly List<string> _keys = [];
    private readonly string? _name;
    private readonly Lock _gate = new();

    /// <summary>Opens an archive from <paramref name="stream"/> (must be seekable).</summary>
    /// <param name="stream">The archive.</param>
    /// <param name="name">A name for error messages (e.g. the path).</param>
    /// <param name="leaveOpen">Keep <paramref name="stream"/> open on dispose.</param>
    /// <exception cref="InvalidDataException">The stream is not a readable zip archive.</exception>
    public NpzReader(Stream stream, string? name = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _name = name;
        try
        {
            _zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen);
        }
        catch (InvalidDataException e)
        {
            if (!leaveOpen) stream.Dispose();
            throw new InvalidDataException($".npz {name ?? "(stream)"}: not a readable zip archive: {e.Message}", e);
        }
        foreach (var entry in _zip.Entries)
        {
            string member = entry.FullName;
            string key = member.EndsWith(".npy", StringComparison.Ordinal) ? member[..^4] : member;
            // Like Python's zipfile, a repeated member name refers to the last entry of that name.
            if (!_byKey.ContainsKey(key)) _keys.Add(key);
            _byMember[member] = entry;
            _byKey[key] = entry;
        }
    }

    /// <summary>Member names with a trailing <c>.npy</c> removed, in archive order (numpy's <c>NpzFile.files</c>).</summary>
    public IReadOnlyList<string> Keys => _keys;

    /// <summary>True if <paramref name="name"/> is a key (or a full member name), like numpy's <c>name in npz</c>.</summary>
    public bool Contains(string name) => _byMember.ContainsKey(name) || _byKey.ContainsKey(name);

    /// <summary>Reads the array stored as <paramref name="name"/> (a key or a full member name).</summary>
    /// <exception cref="KeyNotFoundException">No such member.</exception>
    /// <exception cref="InvalidDataException">The member is not a valid .npy file of a supported dtype, or its compressed data is corrupt.</exception>
    public NdArray Read(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // numpy looks up the full member name first, then the name with .npy appended.
        if (!_byMember.TryGetValue(name, out var entry) && !_byKey.TryGetValue(name, out entry))
            throw new KeyNotFoundException($".npz {_name ?? "(stream)"}: no member '{name}' (or '{name}.npy')");
        string where = $"{_name ?? "(stream)"} member {entry.FullName}";
        lock (_gate)
        {
            try
            {
                using var s = entry.Open();
                return Npy.Read(s, where);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(".npy", StringComparison.Ordinal))
            {
                throw new InvalidDataException($".npz {where}: corrupt member data: {e.Message}", e);
            }
        }
    }

    /// <summary>Reads every member in archive order.</summary>
    /// <exception cref="InvalidDataException">A member is not a valid .npy file of a supported dtype.</exception>
    public OrderedDictionary<string, NdArray> ReadAll()
    {
        var result = new OrderedDictionary<string, NdArray>(StringComparer.Ordinal);
        foreach (var k in _keys) result[k] = Read(k);
        return result;
    }

    /// <inheritdoc/>
    public void Dispose() => _zip.Dispose();
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
