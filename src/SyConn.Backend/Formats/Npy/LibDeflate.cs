using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// The few calls of libdeflate (Debian's <c>libdeflate0</c>, loaded by the exact file name
/// <c>libdeflate.so.0</c>) that one-shot deflate and inflate need. Optional: <see cref="IsAvailable"/> is false when
/// the library (or one of its functions) is missing, on other systems, or when the environment variable
/// <c>SYCONN_NPZ_LIBDEFLATE</c> is <c>0</c>; callers then use System.IO.Compression.
/// </summary>
/// <remarks>A compressor or decompressor is not thread-safe: one per thread. The API used exists unchanged in every
/// libdeflate 1.x.</remarks>
internal static unsafe partial class LibDeflate
{
    internal const string Library = "libdeflate.so.0";

    /// <summary>The environment variable that turns libdeflate off (<c>0</c>) for npz writes and reads.</summary>
    internal const string EnvironmentSwitch = "SYCONN_NPZ_LIBDEFLATE";

    private static readonly Lazy<bool> Available = new(Probe);

    /// <summary>True if <c>libdeflate.so.0</c> loads and exports the functions used, and it is not switched off.</summary>
    public static bool IsAvailable => Available.Value;

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariable(EnvironmentSwitch) == "0") return false;
        if (!NativeLibrary.TryLoad(Library, typeof(LibDeflate).Assembly, null, out var lib)) return false;
        foreach (var f in new[] { "libdeflate_alloc_compressor", "libdeflate_deflate_compress", "libdeflate_deflate_compress_bound", "libdeflate_free_compressor",
                     "libdeflate_alloc_decompressor", "libdeflate_deflate_decompress", "libdeflate_free_decompressor" })
            if (!NativeLibrary.TryGetExport(lib, f, out _)) return false;
        // The handle stays loaded: the generated stubs resolve the same library by the same name.
        return true;
    }

    /// <summary>A new compressor at <paramref name="level"/> (0–12; libdeflate's levels, not zlib's).</summary>
    /// <exception cref="OutOfMemoryException">libdeflate could not allocate it.</exception>
    public static CompressorHandle AllocCompressor(int level)
    {
        var h = libdeflate_alloc_compressor(level);
        if (h.IsInvalid)
        {
            h.Dispose();
            throw new OutOfMemoryException($"libdeflate_alloc_compressor({level}) failed");
        }
        return h;
    }

    /// <summary>The most bytes <see cref="Compress"/> can produce from <paramref name="inputLength"/> bytes.</summary>
    public static long CompressBound(CompressorHandle c, int inputLength) => (long)libdeflate_deflate_compress_bound(c, (nuint)inputLength);

    /// <summary>Deflates <paramref name="input"/> (raw deflate, no zlib wrapper) into <paramref name="output"/>; returns the
    /// compressed length, or 0 if it did not fit (it always fits in <see cref="CompressBound"/> bytes).</summary>
    public static int Compress(CompressorHandle c, ReadOnlySpan<byte> input, Span<byte> output)
    {
        fixed (byte* i = input)
        fixed (byte* o = output)
            return checked((int)libdeflate_deflate_compress(c, i, (nuint)input.Length, o, (nuint)output.Length));
    }

    [ThreadStatic] private static DecompressorHandle? t_decompressor;

    /// <summary>
    /// Inflates the raw deflate stream <paramref name="input"/> into exactly <paramref name="output"/>: true if the
    /// stream is valid and decodes to exactly <c>output.Length</c> bytes, false if it is damaged, decodes to fewer
    /// bytes, or to more (libdeflate stops at the end of <paramref name="output"/>, so no input can make it write
    /// past it). Bytes after the end of the deflate stream in <paramref name="input"/> are ignored.
    /// Thread-safe (one decompressor per thread).
    /// </summary>
    /// <exception cref="OutOfMemoryException">libdeflate could not allocate a decompressor.</exception>
    public static bool DecompressExact(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var d = t_decompressor;
        if (d is null)
        {
            d = libdeflate_alloc_decompressor();
            if (d.IsInvalid)
            {
                d.Dispose();
                throw new OutOfMemoryException("libdeflate_alloc_decompressor failed");
            }
            t_decompressor = d;
        }
        fixed (byte* i = input)
        fixed (byte* o = output)
            return libdeflate_deflate_decompress(d, i, (nuint)input.Length, o, (nuint)output.Length, null) == 0; // LIBDEFLATE_SUCCESS
    }

    /// <summary>A libdeflate decompressor, freed with <c>libdeflate_free_decompressor</c>.</summary>
    internal sealed class DecompressorHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public DecompressorHandle() : base(ownsHandle: true) { }

        protected override bool ReleaseHandle()
        {
            libdeflate_free_decompressor(handle);
            return true;
        }
    }

    [LibraryImport(Library)]
    private static partial DecompressorHandle libdeflate_alloc_decompressor();

    // With actual_out_nbytes_ret null the stream must fill out_nbytes_avail exactly (else LIBDEFLATE_SHORT_OUTPUT or
    // LIBDEFLATE_INSUFFICIENT_SPACE).
    [LibraryImport(Library)]
    private static partial int libdeflate_deflate_decompress(DecompressorHandle decompressor, byte* input, nuint in_nbytes, byte* output, nuint out_nbytes_avail, nuint* actual_out_nbytes_ret);

    [LibraryImport(Library)]
    private static partial void libdeflate_free_decompressor(nint decompressor);

    /// <summary>A libdeflate compressor, freed with <c>libdeflate_free_compressor</c>.</summary>
    internal sealed class CompressorHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public CompressorHandle() : base(ownsHandle: true) { }

        protected override bool ReleaseHandle()
        {
            libdeflate_free_compressor(handle);
            return true;
        }
    }

    [LibraryImport(Library)]
    private static partial CompressorHandle libdeflate_alloc_compressor(int compression_level);

    [LibraryImport(Library)]
    private static partial nuint libdeflate_deflate_compress(CompressorHandle compressor, byte* input, nuint in_nbytes, byte* output, nuint out_nbytes_avail);

    [LibraryImport(Library)]
    private static partial nuint libdeflate_deflate_compress_bound(CompressorHandle compressor, nuint in_nbytes);

    [LibraryImport(Library)]
    private static partial void libdeflate_free_compressor(nint compressor);
}
