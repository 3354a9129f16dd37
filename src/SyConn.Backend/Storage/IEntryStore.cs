using System.Diagnostics.CodeAnalysis;

namespace SyConn.Backend.Storage;

/// <summary>What an entry store holds per key, which decides its file form.</summary>
public enum EntryStoreKind
{
    /// <summary>Any Python object tree per key; on files one pickle of a dict (SyConn's <c>.pkl</c> stores).</summary>
    Pickle,

    /// <summary>One numpy array per key; on files an <c>.npz</c> archive (SyConn's <c>VoxelStorageLazyLoading</c>).</summary>
    Npz,
}

/// <summary>
/// Where a store's entries live: the seam between a typed store (an entry codec, see
/// <see cref="StorageBase"/>) and a backend. An entry is a key (a Python int, str or tuple, see
/// <see cref="StoreKey"/>) and its raw per-key Python object tree, exactly what SyConn keeps under that key,
/// undecoded. The same trees are kept whether the backend is one pickle file per store
/// (<see cref="PickleFileEntryStore"/>, the embedded default), an npz archive (<see cref="NpzEntryStore"/>) or
/// rows of a database table, so converting between backends is lossless.
/// </summary>
/// <remarks>
/// <para><b>Reading</b> works on what <see cref="Load"/> found: <see cref="Count"/>, <see cref="Keys"/> and
/// <see cref="ContainsKey"/> never read entries; <see cref="TryRead"/> reads one key's entry (lazily, where
/// the backend can). Each entry read stands on its own: it shares no mutable object with another key's entry
/// (a pickle may share objects between keys through its memo; such entries are copied on read).</para>
/// <para><b>Writing</b> is <see cref="WriteChanges"/> (only the changed and removed keys; a backend that keeps
/// a whole file rewrites it) or <see cref="ReplaceAll"/>; either is atomic (a reader or a crash sees the old or
/// the new entries, never a mix), and afterwards reads reflect what was written, as if <see cref="Load"/> had
/// run. Writing does not take the lock: the store takes it first (<see cref="AcquireLock"/>).</para>
/// <para><b>Thread-safety:</b> an entry store serves one store object. <see cref="TryRead"/>,
/// <see cref="ContainsKey"/> and <see cref="Count"/> may be called from several threads at once while nothing
/// else runs (a store's parallel <c>GetMany</c>); everything else is called from one thread at a time.</para>
/// </remarks>
public interface IEntryStore : IDisposable
{
    /// <summary>Where the entries live, for messages and for opening the store again: a path or <c>bt:IDENTIFIER</c>.</summary>
    string Location { get; }

    /// <summary>What the store holds per key.</summary>
    EntryStoreKind Kind { get; }

    /// <summary>The folder that relative paths named inside the store are resolved against first (a file store's folder); null when the store lives in no folder.</summary>
    string? Folder { get; }

    /// <summary>
    /// True when <see cref="TryRead"/> returns the same object for a key every time until the next
    /// <see cref="Load"/> or write (a store read whole into memory); false when every read builds a new tree.
    /// </summary>
    bool StableReads { get; }

    /// <summary>After <see cref="Load"/> or a write: true if the store exists (a missing store reads as empty).</summary>
    bool Exists { get; }

    /// <summary>Takes a snapshot of the stored entries (for a file: reads it; lazily where the format allows). A missing store is empty.</summary>
    /// <param name="options">Read limits (<see cref="StoreOptions.PickleOptions"/>).</param>
    /// <exception cref="InvalidDataException">The stored data is corrupt; it is left untouched. The message names the location and offset.</exception>
    void Load(StoreOptions options);

    /// <summary>Number of entries found by <see cref="Load"/> (or written since).</summary>
    int Count { get; }

    /// <summary>The keys as stored (numpy integer scalars included), in stored order.</summary>
    IEnumerable<object> Keys { get; }

    /// <summary>True if <paramref name="key"/> is stored.</summary>
    bool ContainsKey(StoreKey key);

    /// <summary>Reads the raw entry of <paramref name="key"/>.</summary>
    /// <exception cref="InvalidDataException">The stored entry is corrupt (lazy formats find this only now).</exception>
    bool TryRead(StoreKey key, [MaybeNullWhen(false)] out object entry);

    /// <summary>Every entry in stored order, read one after the other (streamed where the backend can).</summary>
    IEnumerable<KeyValuePair<object, object>> ReadAll();

    /// <summary>
    /// Writes the changes of one push atomically: <paramref name="removed"/> first, then <paramref name="changed"/>
    /// (a changed key that is stored keeps its place; new keys follow in the order given).
    /// </summary>
    /// <param name="removed">Keys (Python values) to delete; valid only during the call.</param>
    /// <param name="changed">Keys and their new raw entries; a view valid only during the call (copy what you keep).</param>
    /// <param name="options">Durability and pickle protocol.</param>
    /// <exception cref="ArgumentException">An entry this store cannot hold (nothing was written).</exception>
    /// <exception cref="IOException">Writing failed; what was stored is unchanged.</exception>
    void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options);

    /// <summary>Replaces every stored entry with <paramref name="entries"/> (in that order), atomically.</summary>
    /// <inheritdoc cref="WriteChanges" path="/exception"/>
    void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options);

    /// <summary>Takes the store's exclusive lock, waiting as <paramref name="options"/> says.</summary>
    /// <exception cref="StorageLockTimeoutException">Not acquired in time; names the resource and the holder.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled while waiting.</exception>
    IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default);

    /// <summary>Takes the store's exclusive lock without blocking the caller's thread while it waits.</summary>
    /// <inheritdoc cref="AcquireLock" path="/exception"/>
    Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default);

    /// <summary>
    /// Named side data of this store: another entry store of arrays (<see cref="EntryStoreKind.Npz"/>) that lives
    /// and moves with it, such as VoxelStorageDyn's voxel cache (<see cref="VoxelCacheSideStore"/>; on files the
    /// sibling <c>.npz</c>). It is guarded by this store's lock and takes none of its own.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a plain identifier.</exception>
    IEntryStore OpenSideStore(string name);

    /// <summary>Prepares the location for writing (creates missing folders, tables, ...).</summary>
    void EnsureWritable();

    /// <summary>
    /// Called once the store's lock is released: lets go of what the last <see cref="Load"/> kept only so that the
    /// work of freeing it happens outside the lock (a file store keeps the file it read open while it holds the lock,
    /// so replacing that file in a push does not free the old one, with its blocks, while other processes wait).
    /// </summary>
    void AfterUnlock() { }

    /// <summary>Moves damaged data out of the way (see <see cref="CorruptFilePolicy.MoveAside"/>) and returns where it went.</summary>
    /// <exception cref="NotSupportedException">The backend cannot keep damaged data aside.</exception>
    string MoveAside();

    /// <summary>
    /// True when stores of this backend lock unless told not to (<see cref="StoreOptions.DisableLocking"/> null):
    /// a database, as SyConn's <c>BTBase</c>; false for files, as <c>FSBase</c>.
    /// </summary>
    bool LocksByDefault => false;

    /// <summary>
    /// True when <see cref="Load"/> reads one consistent snapshot without the lock (a database transaction), so a
    /// read-only pull takes no lock; false when only the lock keeps a reader from seeing a writer's half-done work.
    /// </summary>
    bool SnapshotLoads => false;

    /// <summary>True when the backend supports <see cref="StoreOptions.Optimistic"/> (it keeps a store generation that a push can check).</summary>
    bool SupportsOptimistic => false;

    /// <summary>
    /// Announces that <see cref="Load"/> with <paramref name="options"/> follows the next <see cref="AcquireLock"/> or
    /// <see cref="AcquireLockAsync"/> (a store's pull), so a backend may fetch the entries in the lock's round trip.
    /// The default does nothing.
    /// </summary>
    void PrepareLoad(StoreOptions options) { }

    /// <summary>Tells the entry store the class of the store that uses it (a database records it for tools). The default ignores it.</summary>
    /// <param name="storeClass">The store's class name, such as <c>AttributeDict</c>.</param>
    void DescribeAs(string storeClass) { }

    /// <summary>
    /// The entry store at another address, of this store's kind, for a store's <c>Pull(source)</c> and <c>Push(dest)</c>:
    /// an address of this store's own backend opens in the same database (unless the options name another), any
    /// other address as <see cref="EntryStores.Open"/> opens it.
    /// </summary>
    /// <param name="address">A path or <c>SCHEME:IDENTIFIER</c>.</param>
    /// <param name="options">The store's options.</param>
    IEntryStore OpenRelated(string address, StoreOptions options) => EntryStores.Open(address, Kind, options);

    /// <summary>The side store name of VoxelStorageDyn's voxel cache.</summary>
    const string VoxelCacheSideStore = "voxel_cache";
}

/// <summary>
/// An entry store that can read one item of a dict entry without reading (or keeping) the whole entry: the column
/// reads of <see cref="Stores.AttributeDict"/> use it when the entry store offers it.
/// </summary>
internal interface IEntryItemReader
{
    /// <summary>The item <paramref name="name"/> of the dict entry of <paramref name="key"/>, for one look; nothing is kept.</summary>
    /// <exception cref="InvalidDataException">The bytes read are damaged.</exception>
    Formats.Pickle.PickleDictIndex.AttributeRead ReadItemTransient(StoreKey key, string name, out object? result);
}
