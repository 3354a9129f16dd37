using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;

namespace SyConn.Backend.Storage;

/// <summary>
/// numpy <c>.npy</c> files on disk: the file side of the <see cref="Npy"/> codec. Reads stream the file;
/// writes replace it atomically through <see cref="AtomicFile"/>.
/// </summary>
/// <remarks>Thread-safe. Concurrent writers of one path do not corrupt it: the last rename wins.</remarks>
public static class NpyFile
{
    /// <summary>Reads the array in the <c>.npy</c> file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid .npy file of a supported dtype (the message names the path).</exception>
    public static NdArray Read(string path) => Read(path, null);

    /// <summary>Reads the array in the <c>.npy</c> file at <paramref name="path"/> within <paramref name="limits"/>
    /// (null: <see cref="ReadLimits.Default"/>); a header declaring more data than the file holds is refused before allocating.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid .npy file of a supported dtype, or the array exceeds the limits (the message names the path).</exception>
    public static NdArray Read(string path, ReadLimits? limits)
    {
        using var fs = ReadFiles.Open(path, 1, FileOptions.SequentialScan);
        return Npy.Read(new BufferedStream(fs, 1 << 16), path, limits, fs.Length);
    }

    /// <summary>
    /// Replaces (or creates) <paramref name="path"/> with <paramref name="array"/> as numpy 1.24's
    /// <c>np.save</c> writes it, atomically: readers see the old file or the new one, never a part.
    /// </summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="array">The array.</param>
    /// <param name="durable">fsync file and folder (default); false is atomic but not durable (see <see cref="AtomicFile"/>).</param>
    /// <exception cref="ArgumentException">The array is an object array or has a dtype numpy cannot describe by a simple type string.</exception>
    /// <exception cref="IOException">Writing or renaming failed; an existing file is left as it was.</exception>
    public static void Write(string path, NdArray array, bool durable = true)
    {
        ArgumentNullException.ThrowIfNull(array);
        AtomicFile.Write(path, s => Npy.Write(s, array), durable);
    }
}
