namespace SyConn.Backend;

/// <summary>
/// Upper bounds on what the readers of this library allocate for one input: a hostile or damaged file
/// (a header declaring a huge shape, a zip bomb, a cube config with enormous edges) is refused with an
/// <see cref="InvalidDataException"/> naming the file, the field and the limit, <b>before</b> memory is
/// allocated for it.
/// </summary>
/// <remarks>
/// <para>Readers take the limits from an optional argument or option (<c>NpzReader</c>, <c>Npy.Read</c>,
/// <c>Lz4List.Decode</c>, <c>KnossosDatasetOptions.Limits</c>, <c>BinarySearchStoreOptions.Limits</c>, …);
/// when none is given they use <see cref="Default"/>, which a process may replace once at start-up.</para>
/// <para>The defaults are generous enough for every dataset SyConn writes (its largest arrays are single
/// LZ4 chunks just below 2 GiB) and small enough that a file cannot make a reader allocate more than a few
/// GiB: an array never exceeds <see cref="MaxArrayBytes"/> (2 GiB); one npz member inflates to at most
/// <see cref="MaxNpzMemberBytes"/> (2 GiB) and all members of one file to at most
/// <see cref="MaxNpzTotalBytes"/> (16 GiB); a KNOSSOS cube decodes to at most <see cref="MaxCubeBytes"/>
/// (1 GiB, a 512³ uint64 cube); one entry decodes to at most <see cref="MaxEntryBytes"/> (4 GiB) and all
/// entries read from one store (one load of a <c>.pkl</c> file, one npz reader, one bulk read of LZ4 entries) to at
/// most <see cref="MaxStoreBytes"/> (64 GiB; SyConn's store files are a few GB).</para>
/// <para>An LZ4 block is also refused from its size prefix alone when it announces more than 255 bytes per byte of
/// LZ4 data: LZ4's best ratio approaches 255:1 (a length byte of 255 per 255 bytes of match) and never reaches it.</para>
/// <para>Immutable and thread-safe. The pickle reader's own limits (nesting depth, node expansion) are
/// separate and documented with it.</para>
/// </remarks>
public sealed record ReadLimits
{
    private static ReadLimits _default = new();

    /// <summary>2 GiB (<see cref="Array.MaxLength"/> rounded to the next power of two).</summary>
    public const long TwoGiB = 2L << 30;

    /// <summary>The limits used when a reader is given none. Replace it (for instance at start-up) to change every reader at once.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    public static ReadLimits Default
    {
        get => Volatile.Read(ref _default);
        set => Volatile.Write(ref _default, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>The largest array a header may declare (shape × item size, in bytes): .npy headers, HDF5 datasets and attributes, LZ4 blocks. Default 2 GiB.</summary>
    public long MaxArrayBytes { get; init; } = TwoGiB;

    /// <summary>The most bytes one store entry may decode to in all (for an LZ4 chunk list: the sum of its blocks). Default 4 GiB.</summary>
    public long MaxEntryBytes { get; init; } = 4L << 30;

    /// <summary>
    /// The most bytes read from one store may decode to in all, default 64 GiB: for an npz store every member read through
    /// one reader; for a <c>.pkl</c> store file the payloads one load produces (str, bytes and bytearray contents and the
    /// array data the pickle reader copies, counted before each is allocated); for the LZ4 entries of a store the bytes
    /// one <c>GetMany</c> call or one enumeration decodes (each entry's declared size, counted before it is decoded).
    /// Stores take it from <c>StoreOptions.Limits</c>.
    /// </summary>
    public long MaxStoreBytes { get; init; } = 64L << 30;

    /// <summary>The largest size one npz (zip) member may declare and inflate to. Default 2 GiB.</summary>
    public long MaxNpzMemberBytes { get; init; } = TwoGiB;

    /// <summary>The most bytes all members of one npz (zip) file may declare and inflate to together. Default 16 GiB.</summary>
    public long MaxNpzTotalBytes { get; init; } = 16L << 30;

    /// <summary>The largest decoded KNOSSOS cube (8 × cx × cy × cz bytes), checked when a config is read and before a cube is decoded. Default 1 GiB.</summary>
    public long MaxCubeBytes { get; init; } = 1L << 30;

    /// <summary>Throws unless every limit is positive.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is zero or negative.</exception>
    public ReadLimits Validate()
    {
        Check(MaxArrayBytes, nameof(MaxArrayBytes));
        Check(MaxEntryBytes, nameof(MaxEntryBytes));
        Check(MaxStoreBytes, nameof(MaxStoreBytes));
        Check(MaxNpzMemberBytes, nameof(MaxNpzMemberBytes));
        Check(MaxNpzTotalBytes, nameof(MaxNpzTotalBytes));
        Check(MaxCubeBytes, nameof(MaxCubeBytes));
        return this;
    }

    private static void Check(long v, string name)
    {
        if (v <= 0) throw new ArgumentOutOfRangeException(name, v, $"{name} must be positive");
    }

    /// <summary>The message part for a refused size: "<paramref name="what"/> of N bytes exceeds the limit L (ReadLimits.Name)".</summary>
    internal static string Exceeds(string what, long bytes, long limit, string limitName) =>
        $"{what} of {bytes} bytes exceeds the read limit of {limit} bytes (ReadLimits.{limitName})";
}
