using System.Buffers;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// Python pickles of the value model (<see cref="SyConn.Backend.Python"/>): a safe reader for protocols
/// 0–5 and a writer for protocols 2–5 that emits what CPython 3.11 with numpy 1.24 emits.
/// </summary>
/// <remarks>
/// <para><b>Reading</b> is an opcode interpreter, never code execution: only the globals needed for
/// numpy arrays, scalars and dtypes (<c>numpy.core.*</c> and numpy 2's <c>numpy._core.*</c>),
/// <c>collections.defaultdict</c>/<c>OrderedDict</c>, builtin containers, <c>complex</c>,
/// <c>bytes</c>/<c>bytearray</c> and <c>_codecs.encode</c> are accepted; anything else, persistent ids,
/// extension codes and out-of-band buffers raise <see cref="InvalidDataException"/> naming the global,
/// the byte offset and the opcode. Limits (<see cref="PickleReadOptions"/>) are checked before anything
/// is allocated: a length is compared with the remaining input first, so a few bytes claiming gigabytes
/// fail at once. Shared references and containers that hold themselves (<c>l = []; l.append(l)</c>) load
/// as Python loads them: the result holds the same object at each place (see <see cref="PickleReadOptions"/>
/// for what the rest of the library does with them). A numpy object array that holds itself (its BUILD state
/// refers to it through the memo) loads too: the built array is put where its state referred to it.</para>
/// <para><b>Zero copy:</b> <c>bytes</c>, <c>bytearray</c> and ndarray data of the result are slices of
/// the input memory. They share the caller's buffer: mutating a loaded <see cref="Python.PyByteArray"/>
/// or <see cref="Arrays.NdArray"/> mutates the input, and the input must not be changed while the result
/// is in use. Non-native-byte-order arrays read through <c>_reconstruct</c> are copied (numpy swaps them
/// to native order, so do we).</para>
/// <para><b>Writing</b> follows CPython's C pickler: memo (MEMOIZE at 4/5, BINPUT at 2/3), batches of
/// 1000, 64 KiB frames with large payloads outside frames, minimal int opcodes, protocol-2 global names
/// (<c>__builtin__</c>, <c>copy_reg</c>, <c>long</c>). Arrays are written as numpy 1.24 writes them:
/// at protocol 5 <c>numpy.core.numeric._frombuffer(BYTEARRAY8, dtype, shape, 'C'|'F')</c> (BINBYTES for
/// arrays that came from a read-only buffer), else and for object arrays
/// <c>numpy.core.multiarray._reconstruct</c> + BUILD. That output loads with numpy 1.16 or newer,
/// including numpy 2.x (through its <c>numpy.core</c> compatibility names).</para>
/// <para>The writer keeps the value's sharing: an object that occurs twice is written once and fetched from
/// the memo after that, so cycles are written as CPython writes them and load in Python with the same identities.</para>
/// <para>Thread-safety: all members are static and thread-safe; each call works on its own state.
/// A value tree must not be modified while it is being written.</para>
/// </remarks>
public static class Pickle
{
    /// <summary>The highest protocol written (and the default), as CPython 3.8+.</summary>
    public const int HighestProtocol = 5;

    /// <summary>Reads one pickle into the Python value model.</summary>
    /// <param name="data">The whole pickle. Bytes after the STOP opcode are ignored, as Python does.</param>
    /// <param name="options">Safety limits; <see cref="PickleReadOptions.Default"/> when null.</param>
    /// <param name="sourceName">A name (usually the file path) used in error messages.</param>
    /// <returns>The value: see <see cref="SyConn.Backend.Python"/> for the mapping of Python types.</returns>
    /// <exception cref="InvalidDataException">The input is not a pickle this reader accepts: truncated, corrupt,
    /// a refused global or opcode, or beyond a limit. The message names the source, the byte offset and the opcode.</exception>
    public static object Load(ReadOnlyMemory<byte> data, PickleReadOptions? options = null, string? sourceName = null) =>
        new PickleReader(data, options ?? PickleReadOptions.Default, sourceName).Run();

    /// <summary>
    /// <see cref="Load(ReadOnlyMemory{byte}, PickleReadOptions?, string?)"/>, telling whether the pickle's memo
    /// handed out a mutable object (or a tuple or array) more than once, so that the result shares it between
    /// places. Store files normally share only strings, dtypes and empty bytes. The payloads the reader produces (str,
    /// bytes and bytearray contents, copied array data) may add up to <paramref name="maxDecodedBytes"/> bytes at most
    /// (a store file's <see cref="ReadLimits.MaxStoreBytes"/>), checked before each is allocated.
    /// </summary>
    internal static object Load(ReadOnlyMemory<byte> data, PickleReadOptions? options, string? sourceName, out bool sharesValues, long maxDecodedBytes = long.MaxValue)
    {
        var reader = new PickleReader(data, options ?? PickleReadOptions.Default, sourceName) { MaxMaterializedBytes = maxDecodedBytes };
        var result = reader.Run();
        sharesValues = reader.SharesValues;
        return result;
    }

    /// <summary>Writes <paramref name="value"/> as a pickle and returns the bytes.</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <param name="protocol">2 to 5; 5 (the default) is what SyConn writes with Python 3.8+.</param>
    /// <exception cref="ArgumentException">A value outside the model, or nesting deeper than 3000 levels (or than the
    /// call stack allows; the way back to an enclosing container of a cycle does not count).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An unsupported protocol.</exception>
    public static byte[] Dump(object? value, int protocol = HighestProtocol)
    {
        var w = new PickleWriter(protocol, null);
        w.Dump(value);
        return w.ToArray();
    }

    /// <summary>Writes <paramref name="value"/> as a pickle to <paramref name="stream"/> (frames are written as they complete).</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <param name="protocol">2 to 5; 5 (the default) is what SyConn writes with Python 3.8+.</param>
    /// <inheritdoc cref="Dump(object?, int)" path="/exception"/>
    /// <param name="stream">The destination.</param>
    public static void Dump(object? value, Stream stream, int protocol = HighestProtocol)
    {
        ArgumentNullException.ThrowIfNull(stream);
        new PickleWriter(protocol, new StreamOutput(stream)).Dump(value);
    }

    /// <summary>
    /// Writes <paramref name="value"/> as a pickle to <paramref name="output"/>, which takes runs of pieces: the payloads
    /// of bytes, bytearrays and arrays (1 KiB and more) are handed over as the values hold them, without a copy. The
    /// bytes are those of the other overloads.
    /// </summary>
    /// <param name="value">A value of the Python value model; it must not change while this runs.</param>
    /// <param name="output">The destination (a file's positional writer, see Storage.PickleFile).</param>
    /// <param name="protocol">2 to 5.</param>
    /// <inheritdoc cref="Dump(object?, int)" path="/exception"/>
    internal static void Dump(object? value, IGatherOutput output, int protocol = HighestProtocol)
    {
        ArgumentNullException.ThrowIfNull(output);
        new PickleWriter(protocol, output).Dump(value);
    }

    /// <summary>Writes <paramref name="value"/> as a pickle to <paramref name="writer"/>.</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <param name="protocol">2 to 5; 5 (the default) is what SyConn writes with Python 3.8+.</param>
    /// <inheritdoc cref="Dump(object?, int)" path="/exception"/>
    /// <param name="writer">The destination.</param>
    public static void Dump(object? value, IBufferWriter<byte> writer, int protocol = HighestProtocol)
    {
        ArgumentNullException.ThrowIfNull(writer);
        new PickleWriter(protocol, new BufferWriterOutput(writer)).Dump(value);
    }
}
