using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SyConn.Backend.Formats.Lz4;

/// <summary>
/// The reference LZ4 library (<c>liblz4.so.1</c>, Debian's <c>liblz4-1</c>, the one python-lz4 links) through
/// P/Invoke: raw blocks with <c>LZ4_decompress_safe</c>, and compressed the way python-lz4's
/// <c>lz4.block.compress</c> does it (<c>LZ4_initStream</c> + <c>LZ4_compress_fast_continue</c>, acceleration 1);
/// <c>LZ4_compress_default</c> and <c>LZ4_compressBound</c> too.
/// </summary>
/// <remarks>
/// <para>
/// python-lz4 compresses through a freshly reset stream, not <c>LZ4_compress_default</c>. The two agree for inputs
/// above 64 KiB; below that <c>LZ4_compress_default</c> switches to 16-bit hash tables and finds other matches,
/// so its blocks (and K4os's, which follow it) differ from python-lz4's there. <see cref="Compress"/> makes the
/// same calls as python-lz4 and so writes the same bytes with the same library.
/// </para>
/// <para>
/// The library is loaded on first use with <see cref="NativeLibrary.TryLoad(string, Assembly, DllImportSearchPath?, out nint)"/>
/// by its soname (Debian ships <c>liblz4.so.1</c>, not the development link <c>liblz4.so</c>), and a
/// <see cref="DllImportResolver"/> hands that handle to the imports below. When the library is missing, lacks
/// one of the functions, or is older than <see cref="MinimumVersion"/>, <see cref="IsAvailable"/> is false and
/// no import is ever called, so nothing is thrown to users; <see cref="PyLz4"/> then uses the managed codec.
/// Callers pass exact spans: <c>LZ4_decompress_safe</c> never reads past <c>compressedSize</c> input bytes
/// nor writes past <c>dstCapacity</c> output bytes, whatever the input holds.
/// </para>
/// </remarks>
internal static unsafe partial class NativeLz4
{
    /// <summary>The soname the imports are bound to.</summary>
    internal const string LibraryName = "liblz4.so.1";

    /// <summary>
    /// The oldest liblz4 used: 1.9.0, the first with <c>LZ4_initStream</c>. Older copies fall back to the managed
    /// codec; that costs speed only.
    /// </summary>
    internal const int MinimumVersion = 10900;

    [LibraryImport(LibraryName, EntryPoint = "LZ4_decompress_safe")]
    private static partial int DecompressSafe(byte* src, byte* dst, int compressedSize, int dstCapacity);

    [LibraryImport(LibraryName, EntryPoint = "LZ4_compress_default")]
    private static partial int CompressDefaultNative(byte* src, byte* dst, int srcSize, int dstCapacity);

    [LibraryImport(LibraryName, EntryPoint = "LZ4_sizeofState")]
    private static partial int SizeofState();

    [LibraryImport(LibraryName, EntryPoint = "LZ4_initStream")]
    private static partial void* InitStream(void* buffer, nuint size);

    [LibraryImport(LibraryName, EntryPoint = "LZ4_compress_fast_continue")]
    private static partial int CompressFastContinue(void* stream, byte* src, byte* dst, int srcSize, int dstCapacity, int acceleration);

    [LibraryImport(LibraryName, EntryPoint = "LZ4_compressBound")]
    private static partial int CompressBoundNative(int inputSize);

    [LibraryImport(LibraryName, EntryPoint = "LZ4_versionNumber")]
    private static partial int VersionNumberNative();

    /// <summary>True when liblz4 is loaded and usable; false means every call below would fail.</summary>
    internal static bool IsAvailable => State.Handle != 0;

    /// <summary>liblz4's version number (<c>major*10000 + minor*100 + release</c>), 0 when the library was not found.</summary>
    internal static int Version => State.Version;

    /// <summary>Why the library is not used, or null when it is.</summary>
    internal static string? Unavailable => State.Reason;

    /// <summary>The version as text, e.g. <c>1.9.4</c>.</summary>
    internal static string VersionText => Text(Version);

    /// <summary>
    /// <c>LZ4_decompress_safe</c> of a raw block (no prefix) into exactly <paramref name="destination"/>.
    /// Returns the number of bytes written, or a negative number when the block is malformed or would produce
    /// more than <paramref name="destination"/> holds.
    /// </summary>
    internal static int Decompress(ReadOnlySpan<byte> block, Span<byte> destination)
    {
        EnsureAvailable();
        fixed (byte* s = block)
        fixed (byte* d = destination)
        {
            return DecompressSafe(s, d, block.Length, destination.Length);
        }
    }

    /// <summary>The largest stream state kept on the stack; liblz4 1.9's default build needs 16,416 bytes.</summary>
    private const int StackStateLimit = 64 * 1024;

    /// <summary>
    /// python-lz4's <c>compress(data, mode='default')</c> without the prefix: a fresh stream, then
    /// <c>LZ4_compress_fast_continue</c> with acceleration 1, into <paramref name="destination"/>.
    /// Returns the block's length, 0 on failure (input too large or destination too small).
    /// </summary>
    [SkipLocalsInit] // liblz4 initialises the state itself
    internal static int Compress(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        EnsureAvailable();
        int stateSize = State.StreamSize;
        if (stateSize + 16 > StackStateLimit) return CompressWithHeapState(data, destination, stateSize);
        byte* raw = stackalloc byte[stateSize + 16];
        return CompressWith(Align(raw), stateSize, data, destination);
    }

    private static int CompressWithHeapState(ReadOnlySpan<byte> data, Span<byte> destination, int stateSize)
    {
        void* state = NativeMemory.AlignedAlloc((nuint)stateSize, 16);
        try
        {
            return CompressWith((byte*)state, stateSize, data, destination);
        }
        finally
        {
            NativeMemory.AlignedFree(state);
        }
    }

    private static byte* Align(byte* p) => (byte*)(((nuint)p + 15) & ~(nuint)15);

    private static int CompressWith(byte* state, int stateSize, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        void* stream = InitStream(state, (nuint)stateSize);
        if (stream is null) return 0;
        fixed (byte* s = data)
        fixed (byte* d = destination)
        {
            return CompressFastContinue(stream, s, d, data.Length, destination.Length, 1);
        }
    }

    /// <summary>
    /// <c>LZ4_compress_default</c> of <paramref name="data"/> into <paramref name="destination"/> (a raw block).
    /// Not what python-lz4 calls (see the remarks); kept to show where the two differ.
    /// </summary>
    internal static int CompressDefault(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        EnsureAvailable();
        fixed (byte* s = data)
        fixed (byte* d = destination)
        {
            return CompressDefaultNative(s, d, data.Length, destination.Length);
        }
    }

    /// <summary><c>LZ4_compressBound</c>: the largest raw block for <paramref name="inputSize"/> bytes, 0 above <c>LZ4_MAX_INPUT_SIZE</c>.</summary>
    internal static int CompressBound(int inputSize)
    {
        EnsureAvailable();
        return CompressBoundNative(inputSize);
    }

    private static void EnsureAvailable()
    {
        if (!IsAvailable)
            throw new InvalidOperationException($"the native LZ4 library is not in use: {Unavailable}");
    }

    /// <summary>Loads the library once, on first use (the runtime runs this type initializer exactly once).</summary>
    private static class State
    {
        internal static readonly nint Handle;
        internal static readonly int Version;
        internal static readonly string? Reason;
        internal static readonly int StreamSize;

        static State()
        {
            if (!TryOpen(LibraryName, out nint handle, out Reason)) return;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeLz4).Assembly, (libraryName, _, _) => libraryName == LibraryName ? handle : 0);
            }
            catch (InvalidOperationException)
            {
                // One resolver per assembly: another part of the assembly registered one first. The default
                // probing tries the exact soname too and finds the library loaded above.
            }
            int version, streamSize;
            try
            {
                version = VersionNumberNative();
                streamSize = SizeofState();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                Reason = $"{LibraryName} could not be bound: {e.Message}";
                return;
            }
            Version = version;
            if (version < MinimumVersion)
            {
                Reason = $"{LibraryName} is version {Text(version)}; {Text(MinimumVersion)} or newer is needed";
                return;
            }
            if (streamSize <= 0)
            {
                Reason = $"{LibraryName} reports a stream state of {streamSize} bytes";
                return;
            }
            StreamSize = streamSize;
            Handle = handle;
        }
    }

    /// <summary>Opens <paramref name="libraryName"/> and checks that it exports every function bound here; never throws.</summary>
    internal static bool TryOpen(string libraryName, out nint handle, out string? reason)
    {
        reason = null;
        if (!NativeLibrary.TryLoad(libraryName, typeof(NativeLz4).Assembly, null, out handle)
            && !NativeLibrary.TryLoad(libraryName, out handle))
        {
            reason = $"{libraryName} not found (on Debian: apt-get install liblz4-1)";
            return false;
        }
        foreach (var name in Exports)
        {
            if (!NativeLibrary.TryGetExport(handle, name, out _))
            {
                reason = $"{libraryName} has no {name}";
                NativeLibrary.Free(handle);
                handle = 0;
                return false;
            }
        }
        return true;
    }

    private static readonly string[] Exports =
        ["LZ4_decompress_safe", "LZ4_compress_default", "LZ4_compressBound", "LZ4_versionNumber", "LZ4_sizeofState", "LZ4_initStream", "LZ4_compress_fast_continue"];

    private static string Text(int version) => version == 0 ? "none" : $"{version / 10000}.{version / 100 % 100}.{version % 100}";
}
