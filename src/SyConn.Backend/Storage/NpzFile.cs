using System.IO.Compression;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;

namespace SyConn.Backend.Storage;

/// <summary>
/// numpy <c>.npz</c> archives on disk: the file side of <see cref="NpzReader"/>, <see cref="NpzWriter"/>
/// and <see cref="Npz"/>. Writes replace the archive atomically through <see cref="AtomicFile"/>.
/// </summary>
/// <remarks>Thread-safe. Concurrent writers of one path do not corrupt it: the last rename wins.</remarks>
public static class NpzFile
{
    /// <summary>Opens the archive at <paramref name="path"/> for lazy, per-member reads. Dispose the reader to close the file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a readable zip archive (the message names the path).</exception>
    public static NpzReader OpenRead(string path) => OpenRead(path, null);

    /// <summary>Opens the archive at <paramref name="path"/> for lazy, per-member reads within <paramref name="limits"/> (null: <see cref="ReadLimits.Default"/>).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a readable zip archive or exceeds the limits (the message names the path).</exception>
    public static NpzReader OpenRead(string path, ReadLimits? limits)
    {
        var fs = ReadFiles.Open(path, 1 << 16);
        try
        {
            return new NpzReader(fs, path, leaveOpen: false, limits, new HandleSource(fs.SafeFileHandle));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Reads every array of the archive at <paramref name="path"/>, keyed by member name without <c>.npy</c>, in archive order.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid npz archive of supported arrays.</exception>
    public static OrderedDictionary<string, NdArray> ReadAll(string path)
    {
        using var r = OpenRead(path);
        return r.ReadAll();
    }

    /// <summary>
    /// Replaces (or creates) the archive at <paramref name="path"/> with <paramref name="arrays"/>, one
    /// member <c>&lt;name&gt;.npy</c> each, like <c>numpy.savez_compressed</c> (or <c>numpy.savez</c> with
    /// <paramref name="compress"/> false), atomically: readers see the old archive or the new one.
    /// </summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="arrays">Member names (without <c>.npy</c>) and arrays, in archive order.</param>
    /// <param name="compress">Deflate the members (default); false stores them.</param>
    /// <param name="level">Deflate level; see <see cref="NpzWriter"/>.</param>
    /// <param name="durable">fsync file and folder (default); false is atomic but not durable (see <see cref="AtomicFile"/>).</param>
    /// <exception cref="ArgumentException">A name repeats or an array cannot be written as .npy (the old file is kept).</exception>
    /// <exception cref="IOException">Writing or renaming failed; an existing file is left as it was.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, NdArray>> arrays, bool compress = true,
        CompressionLevel level = CompressionLevel.Optimal, bool durable = true)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        AtomicFile.Write(path, s => Npz.Write(s, arrays, compress, level), durable);
    }

    // Positional reads of the open file (pread): thread-safe, and independent of the stream's position.
    private sealed class HandleSource(Microsoft.Win32.SafeHandles.SafeFileHandle handle) : IPositionalSource
    {
        public int ReadAt(Span<byte> buffer, long offset) => RandomAccess.Read(handle, buffer, offset);
    }
}
