using System.IO.Compression;

namespace SyConn.Backend.Formats.Npy;

/// <summary>Which deflate implementation compresses npz members.</summary>
internal enum DeflateEngine
{
    /// <summary>libdeflate for <see cref="CompressionLevel.Optimal"/> when it is available, else System.IO.Compression.</summary>
    Auto,

    /// <summary>System.IO.Compression (zlib-ng) only.</summary>
    Managed,

    /// <summary>libdeflate for <see cref="CompressionLevel.Optimal"/>; fails if it is missing (tests).</summary>
    LibDeflate,
}

/// <summary>
/// Raw-deflates whole members, one at a time, reusing its buffers: one instance per thread.
/// </summary>
/// <remarks>
/// <para>Levels. numpy deflates at zlib's default level 6. zlib-ng (System.IO.Compression) and libdeflate
/// number their levels differently from zlib and from each other; on W7's voxel coordinates
/// (docs/benchmarks.md, "npz writes: parallel deflate"), against numpy's file of the same arrays:
/// zlib-ng 3 is 5.3% larger, zlib-ng 4 2.7% larger at 150 MB/s per core; libdeflate 3 is 3.9% larger at
/// 240 MB/s per core, libdeflate 2 5.5% larger. <see cref="CompressionLevel.Optimal"/> therefore means the
/// fastest level that stays within 5% of numpy's file: libdeflate 3 when <c>libdeflate.so.0</c> is there, else
/// zlib-ng 4. The other levels are System.IO.Compression's own.</para>
/// <para>Output depends only on the input, the level and the library (version): the same on every thread.</para>
/// </remarks>
internal abstract class MemberDeflater : IDisposable
{
    /// <summary>libdeflate's level for <see cref="CompressionLevel.Optimal"/>.</summary>
    internal const int LibDeflateOptimalLevel = 3;

    /// <summary>zlib-ng's level for <see cref="CompressionLevel.Optimal"/> without libdeflate.</summary>
    internal const int ZlibNgOptimalLevel = 4;

    /// <summary>Buffers larger than this are not kept between members.</summary>
    private protected const int KeepBufferBytes = 16 << 20;

    /// <summary>Deflates <paramref name="input"/>; the result is valid until the next call.</summary>
    public abstract ReadOnlySpan<byte> Compress(ReadOnlySpan<byte> input);

    /// <summary>A short description for reports: library and level.</summary>
    public abstract string Description { get; }

    /// <summary>True if <paramref name="level"/> and <paramref name="engine"/> resolve to libdeflate.</summary>
    /// <exception cref="InvalidOperationException"><see cref="DeflateEngine.LibDeflate"/> was asked for but the library is missing.</exception>
    public static bool UsesLibDeflate(CompressionLevel level, DeflateEngine engine)
    {
        if (level != CompressionLevel.Optimal || engine == DeflateEngine.Managed) return false;
        if (LibDeflate.IsAvailable) return true;
        if (engine == DeflateEngine.LibDeflate) throw new InvalidOperationException($"{LibDeflate.Library} is not available");
        return false;
    }

    /// <summary>A deflater for <paramref name="level"/>.</summary>
    public static MemberDeflater Create(CompressionLevel level, DeflateEngine engine) =>
        UsesLibDeflate(level, engine) ? new LibDeflateDeflater(LibDeflateOptimalLevel) : new ManagedDeflater(level);

    /// <inheritdoc/>
    public abstract void Dispose();

    private sealed class LibDeflateDeflater(int level) : MemberDeflater
    {
        private readonly LibDeflate.CompressorHandle _c = LibDeflate.AllocCompressor(level);
        private byte[] _out = [];

        public override string Description => $"libdeflate {level}";

        public override ReadOnlySpan<byte> Compress(ReadOnlySpan<byte> input)
        {
            long bound = LibDeflate.CompressBound(_c, input.Length);
            if (bound > Array.MaxLength) throw new ArgumentException($"a member of {input.Length} bytes is too large to deflate in one piece");
            var output = _out.Length >= bound ? _out : GC.AllocateUninitializedArray<byte>((int)bound);
            int n = LibDeflate.Compress(_c, input, output);
            if (n == 0) throw new InvalidOperationException("libdeflate_deflate_compress: output did not fit its own bound");
            _out = output.Length <= KeepBufferBytes ? output : [];
            return output.AsSpan(0, n);
        }

        public override void Dispose() => _c.Dispose();
    }

    private sealed class ManagedDeflater : MemberDeflater
    {
        private readonly ZLibCompressionOptions? _options;
        private readonly CompressionLevel _level;
        private MemoryStream _out = new();

        public ManagedDeflater(CompressionLevel level)
        {
            _level = level;
            if (level == CompressionLevel.Optimal) _options = new ZLibCompressionOptions { CompressionLevel = ZlibNgOptimalLevel };
        }

        public override string Description => _options is null ? $"System.IO.Compression {_level}" : $"System.IO.Compression level {_options.CompressionLevel}";

        public override ReadOnlySpan<byte> Compress(ReadOnlySpan<byte> input)
        {
            if (_out.Capacity > KeepBufferBytes) _out = new MemoryStream();
            _out.SetLength(0);
            using (var d = _options is null ? new DeflateStream(_out, _level, leaveOpen: true) : new DeflateStream(_out, _options, leaveOpen: true))
                d.Write(input);
            return _out.GetBuffer().AsSpan(0, (int)_out.Length);
        }

        public override void Dispose() => _out.Dispose();
    }
}
