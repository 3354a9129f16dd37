using Microsoft.Win32.SafeHandles;
using SyConn.Backend.Formats.Pickle;

namespace SyConn.Backend.Storage;

/// <summary>Pickles written straight into a file (what a store push uses): positional gathered writes, no stream buffer.</summary>
internal static class PickleFile
{
    /// <summary>
    /// Writes <paramref name="value"/> as a pickle to the file behind <paramref name="file"/> from <paramref name="offset"/> on,
    /// with positional writes of about 1 MiB whose payloads (bytes, bytearrays, arrays) go from the values to the file without
    /// an intermediate copy. The bytes are those of the other overloads. Returns the number of bytes written.
    /// </summary>
    /// <param name="value">A value of the Python value model; it must not change while this runs.</param>
    /// <param name="file">A handle of a regular file open for writing (positional writes: its file position is neither used nor moved).</param>
    /// <param name="offset">Where the pickle starts in the file.</param>
    /// <param name="protocol">2 to 5.</param>
    /// <inheritdoc cref="Formats.Pickle.Pickle.Dump(object?, int)" path="/exception"/>
    internal static long Dump(object? value, SafeFileHandle file, long offset = 0, int protocol = Formats.Pickle.Pickle.HighestProtocol)
    {
        ArgumentNullException.ThrowIfNull(file);
        var output = new FileOutput(file, offset);
        Formats.Pickle.Pickle.Dump(value, output, protocol);
        return output.Offset - offset;
    }
}

/// <summary>
/// Positional writes to a file, from <paramref name="offset"/> on: a run of pieces is one <c>pwritev</c> per
/// <see cref="MaxVectors"/> pieces, so the payloads go from the values to the file with the kernel's copy only.
/// </summary>
internal sealed class FileOutput(SafeFileHandle handle, long offset = 0) : IGatherOutput
{
    /// <summary>Linux's IOV_MAX: the most pieces one <c>pwritev</c> takes.</summary>
    public const int MaxVectors = 1024;

    private readonly List<ReadOnlyMemory<byte>> _part = [];

    /// <summary>Where the next write goes (the bytes written so far, when starting at 0).</summary>
    public long Offset { get; private set; } = offset;

    public void Write(ReadOnlySpan<byte> data)
    {
        RandomAccess.Write(handle, data, Offset);
        Offset += data.Length;
    }

    public void Write(IReadOnlyList<ReadOnlyMemory<byte>> pieces, long totalBytes)
    {
        if (pieces.Count <= MaxVectors)
        {
            RandomAccess.Write(handle, pieces, Offset);
            Offset += totalBytes;
            return;
        }
        for (int i = 0; i < pieces.Count; i += MaxVectors)
        {
            _part.Clear();
            long n = 0;
            for (int j = i; j < Math.Min(pieces.Count, i + MaxVectors); j++)
            {
                _part.Add(pieces[j]);
                n += pieces[j].Length;
            }
            RandomAccess.Write(handle, _part, Offset);
            Offset += n;
        }
        _part.Clear();
    }
}
