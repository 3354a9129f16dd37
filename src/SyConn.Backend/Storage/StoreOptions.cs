using Microsoft.Extensions.Logging;
using SyConn.Backend.Formats.Pickle;

namespace SyConn.Backend.Storage;

/// <summary>What to do when a store file exists but cannot be read.</summary>
public enum CorruptFilePolicy
{
    /// <summary>Raise <see cref="InvalidDataException"/> and leave the file untouched (default).</summary>
    Throw,

    /// <summary>
    /// Rename the damaged file to <c>&lt;name&gt;.corrupt-&lt;UTC time&gt;</c>, log a warning and start with an
    /// empty store. Nothing is deleted: the damaged bytes stay available for recovery.
    /// </summary>
    MoveAside,
}

/// <summary>
/// Options of a store, named after SyConn's storage arguments (<c>read_only</c>, <c>cache_decomp</c>,
/// <c>disable_locking</c>, <c>max_delay</c>, <c>timeout</c>, <c>max_nb_attempts</c>) plus our additions.
/// </summary>
public sealed record StoreOptions
{
    /// <summary>
    /// <c>read_only</c> (default true, as upstream). A read-only store holds the lock only while reading and
    /// refuses <see cref="StorageBase.Push"/> unless <see cref="AllowReadOnlyPush"/> is set. A writable store
    /// creates missing folders and, with locking on, holds the lock from pull until push.
    /// </summary>
    public bool ReadOnly { get; init; } = true;

    /// <summary><c>cache_decomp</c>: keep decoded values in memory so repeated reads of a key decode once.</summary>
    public bool CacheDecomp { get; init; }

    /// <summary>
    /// <c>disable_locking</c>. Null (the default) takes the backend's own default, as upstream: files lock only when
    /// asked to (<c>FSBase</c>), <c>bt:</c> stores lock unless told not to (<c>BTBase</c>). True never locks; false
    /// always locks.
    /// </summary>
    public bool? DisableLocking { get; init; }

    /// <summary>
    /// Optimistic concurrency instead of a lock (on backends that keep a store generation, such as <c>bt:</c>): the
    /// pull takes no lock and remembers the generation it read; the push writes only if nobody pushed since, and
    /// otherwise raises <see cref="StoreConflictException"/> without writing. Retry with
    /// <see cref="OptimisticRetry"/>. A file store refuses this option.
    /// </summary>
    public bool Optimistic { get; init; }

    /// <summary>
    /// Read entries on demand instead of with the pull, for stores too big to pull whole (where the backend can:
    /// <c>bt:</c> stores; an <c>.npz</c> is always read lazily and a pickle file always whole). The pull then reads
    /// the keys only; see the backend's documentation for what a series of single-key reads sees.
    /// </summary>
    public bool LazyLoad { get; init; }

    /// <summary>
    /// The database of <c>bt:</c> addresses, as an Npgsql connection string (several hosts in it give Npgsql's
    /// failover); null takes the <c>SYCONN_BT</c> environment variable. Ignored by file stores.
    /// </summary>
    public string? ConnectionString { get; init; }

    /// <summary><c>max_delay</c> in seconds: an upper bound on the pause between lock attempts; accepted for compatibility (ours waits in the kernel and is woken at the release, without pauses).</summary>
    public double MaxDelay { get; init; } = 100;

    /// <summary><c>timeout</c> in seconds: give up acquiring the lock after this long (default 1000, as upstream).</summary>
    public double Timeout { get; init; } = 1000;

    /// <summary><c>max_nb_attempts</c>: upstream splits <see cref="Timeout"/> into this many attempts; the total wait is still <see cref="Timeout"/>.</summary>
    public int MaxNbAttempts { get; init; } = 100;

    /// <summary>
    /// Push is durable by default: the file and its folder are fsynced, so a push that returned survives a
    /// power cut. <c>false</c> skips the fsyncs (as upstream, which never fsyncs): faster, and still
    /// crash-safe against process kills (the rename is atomic), but a power cut may lose the last pushes.
    /// </summary>
    public bool Durable { get; init; } = true;

    /// <summary>
    /// With <see cref="Durable"/> false, file stores only: replace the store file without making the file system
    /// start writing the new one back (ext4 does that inside the rename Python and a plain push use). The data then
    /// reach the disk on the kernel's schedule, about 30 s later, or never if the store is pushed again before that:
    /// a small push costs several times less (see <see cref="AtomicFile"/>). A power cut within that delay may leave
    /// the store empty, so this is for stores that can be rebuilt. Default false; ignored by durable pushes, whose
    /// fsync writes the data anyway.
    /// </summary>
    public bool DeferWriteBack { get; init; }

    /// <summary>Allow <see cref="StorageBase.Push"/> on a read-only store (upstream always allows it; we refuse by default).</summary>
    public bool AllowReadOnlyPush { get; init; }

    /// <summary>What to do with a file that cannot be read (default: raise and keep it).</summary>
    public CorruptFilePolicy OnCorruptFile { get; init; } = CorruptFilePolicy.Throw;

    /// <summary>Pickle protocol used by push (default 5, what current SyConn writes; 2 and 4 are possible).</summary>
    public int PickleProtocol { get; init; } = 5;

    /// <summary>Limits of the pickle reader (null: defaults).</summary>
    public PickleReadOptions? PickleOptions { get; init; }

    /// <summary>
    /// Read limits of the store (null: <see cref="ReadLimits.Default"/>): <see cref="ReadLimits.MaxStoreBytes"/> bounds
    /// the payload bytes one load of a <c>.pkl</c> store file produces, the bytes read from an <c>.npz</c> store, and the
    /// LZ4 bytes that one <c>GetMany</c> call or one enumeration of a store decodes in all (each entry's declared sizes,
    /// counted before it is decoded); <see cref="ReadLimits.MaxEntryBytes"/> and <see cref="ReadLimits.MaxArrayBytes"/>
    /// bound each LZ4 entry of such a call.
    /// </summary>
    public ReadLimits? Limits { get; init; }

    /// <summary>
    /// What opening a read-only store whose file (or <c>bt:</c> store) does not exist does: true raises
    /// <see cref="FileNotFoundException"/> naming it; false opens an empty store, as upstream. Null (the default)
    /// lets the way of opening decide: the <c>Open</c>/<c>OpenAsync</c> factories and <c>StoreFactory.Open</c> take
    /// true, the constructors shaped as SyConn's take false. Either way a missing store is logged as a warning
    /// through <see cref="Logger"/>. Writable stores create what is missing whatever this says.
    /// </summary>
    public bool? MustExist { get; init; }

    /// <summary>The options a factory opens with: <see cref="MustExist"/> true unless the caller decided.</summary>
    internal static StoreOptions ForFactory(StoreOptions? options) =>
        options is null ? FactoryDefault : options.MustExist is null ? options with { MustExist = true } : options;

    private static readonly StoreOptions FactoryDefault = new() { MustExist = true };

    /// <summary>Receives warnings (mesh length mismatches, moved-aside files, overridden paths); null for none.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Read-only defaults (as upstream).</summary>
    public static StoreOptions Default { get; } = new();

    /// <summary>A writable store with the backend's default locking (none on files, a lock on <c>bt:</c> stores).</summary>
    public static StoreOptions Writable { get; } = new() { ReadOnly = false };

    /// <summary>A writable store with locking on, whatever the backend.</summary>
    public static StoreOptions WritableLocked { get; } = new() { ReadOnly = false, DisableLocking = false };

    /// <summary>
    /// The backend-neutral lock options these settings make (<see cref="Timeout"/>, <see cref="MaxNbAttempts"/>,
    /// <see cref="MaxDelay"/>), as every entry store's <see cref="IEntryStore.AcquireLock"/> takes them.
    /// </summary>
    public LockOptions LockOptions => new()
    {
        Timeout = TimeSpan.FromSeconds(Math.Max(0, Timeout)),
        MaxNbAttempts = MaxNbAttempts,
        MaxDelay = TimeSpan.FromSeconds(Math.Max(0, MaxDelay)),
    };
}
