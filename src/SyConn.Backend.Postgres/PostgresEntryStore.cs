using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;
using NpgsqlTypes;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Postgres;

/// <summary>
/// The entry store of a BT store (<c>bt:IDENTIFIER</c>): one row per key in PostgreSQL (see <see cref="BtSchema"/>
/// for the tables). Each row holds the pickled per-key tree a SyConn <c>.pkl</c> keeps under that key, so every
/// typed store works on it unchanged and converting between files and BT is lossless.
/// </summary>
/// <remarks>
/// <para><b>Pull.</b> By default <see cref="Load"/> streams every row of the store in one snapshot (so a read-only pull
/// sees one consistent state and needs no lock), checks each row's key and its entry's pickle layout as it arrives
/// (a damaged row fails the pull, naming its key), and keeps each entry's bytes to decode it when its key is first
/// read (bytes inside an entry, such as LZ4 chunks, stay slices of the row's buffer; nothing is copied twice); an entry
/// laid out right whose content cannot be decoded fails the read of its key. A big store is read on two connections sharing one exported snapshot, each reading and decoding half
/// of the rows; a small one, and a locked pull, in one statement. With <see cref="StoreOptions.LazyLoad"/> it reads the keys only, and each
/// <see cref="TryRead"/> reads one row. Consistency of the lazy mode: each read sees the latest committed push at the
/// time of that read. A store that holds its lock (a writable store with locking) sees only its own pushes, so the
/// series is consistent; a read-only or unlocked lazy store may see keys of different pushes, and keys pushed after
/// the pull are not listed.</para>
/// <para><b>Push.</b> <see cref="WriteChanges"/> writes only the changed and removed keys and bumps the store's
/// generation, in one transaction: few rows in one statement, many through binary COPY (pickled while it streams). A key keeps its place in the
/// store's order when it is changed; new keys follow. A push either commits whole or leaves the previous content.
/// When the connection is lost before the answer comes, the outcome is read back from the server, never guessed: a
/// one-statement push by its token in <c>stores.pushes</c> (<see cref="ResolveUnknownPush"/>), any other by
/// <c>pg_xact_status</c> of its transaction (<see cref="ResolveUnknownCommit"/>).</para>
/// <para><b>Locking</b> is on by default (SyConn's <c>BTBase</c>): a session advisory lock on a pinned connection
/// (<see cref="BtLock"/>), on which the locked store then pulls and pushes. <see cref="StoreOptions.Optimistic"/>
/// instead checks at push time that the generation is still the one pulled. A locked push checks the generation too,
/// so a writer that did not lock (optimistic, or with locking disabled) is met with <see cref="StoreConflictException"/>
/// rather than overwritten; only pushes with locking disabled write without looking (the last push wins).</para>
/// <para><b>Limits.</b> One entry may be at most about 1 GB pickled (PostgreSQL's field limit); a bigger one is refused
/// before anything is written. Thread-safety: see <see cref="IEntryStore"/>; concurrent <see cref="TryRead"/>s of a
/// lazy store each use a pooled connection.</para>
/// </remarks>
public sealed class PostgresEntryStore : IEntryStore
{
    /// <summary>The largest pickled entry a row takes (PostgreSQL refuses fields over 1 GB; a margin is kept for the row).</summary>
    public const int MaxEntryBytesDefault = (1 << 30) - (1 << 16);

    /// <summary>Pushes of at most this many rows go as one INSERT; larger ones through binary COPY.</summary>
    private const int InsertRowLimit = 64;

    private readonly BtDatabase _db;
    private BtRoute? _route;
    private readonly string? _side;
    private Dictionary<byte[], Row> _rows = new(ByteKeyComparer.Instance);
    private long _generation;
    private bool _lazy;
    private long _nextSeq;
    // Each row is a pickle of its own: the attribute names and dtype codes they all repeat are shared between them.
    private PickleReadOptions _rowPickleOptions = DefaultRowPickleOptions;

    private static readonly PickleReadOptions DefaultRowPickleOptions = PickleReadOptions.Default with { ShareShortStrings = true };
    private BtLock? _lock;
    private StoreOptions? _prefetchFor;
    private bool _loaded;
    private RawLoad? _prefetched;
    private string? _storeClass;

    internal PostgresEntryStore(BtDatabase db, string identifier, EntryStoreKind kind, string? side = null)
    {
        _db = db;
        Identifier = CheckIdentifier(identifier);
        Kind = kind;
        _side = side;
    }

    /// <summary>The store's identifier (what follows <c>bt:</c>).</summary>
    public string Identifier { get; }

    /// <summary>The largest pickled entry a push accepts; lowered only by tests.</summary>
    internal int MaxEntryBytes { get; set; } = MaxEntryBytesDefault;

    /// <summary>Where this store's rows live (read from the partition map on a partitioned layout).</summary>
    private BtRoute R => _route ??= BtRouter.Route(_db, Identifier);

    /// <summary>The tables of this store's rows.</summary>
    private BtTables T => R.Tables;

    /// <summary>The server that holds this store's rows.</summary>
    private BtDatabase Db => R.Db;

    /// <summary>Runs on the push's connection just before its COMMIT, or before a one-statement push's statement, which commits by itself (fault-injection tests only).</summary>
    internal Action<NpgsqlConnection>? BeforeCommit { get; set; }

    /// <summary>The generation the last pull or push saw (0 for a store never pushed).</summary>
    public long Generation => _generation;

    /// <inheritdoc/>
    public string Location => _side is null ? "bt:" + Identifier : $"bt:{Identifier}#{_side}";

    /// <inheritdoc/>
    public EntryStoreKind Kind { get; }

    /// <inheritdoc/>
    public string? Folder => null;

    /// <inheritdoc/>
    public bool StableReads => !_lazy;

    /// <inheritdoc/>
    public bool Exists { get; private set; }

    /// <inheritdoc/>
    public bool LocksByDefault => _side is null;

    /// <inheritdoc/>
    public bool SnapshotLoads => true;

    /// <inheritdoc/>
    public bool SupportsOptimistic => _side is null;

    /// <inheritdoc/>
    public void DescribeAs(string storeClass) => _storeClass = storeClass;

    /// <inheritdoc/>
    public int Count => _rows.Count;

    /// <inheritdoc/>
    public IEnumerable<object> Keys
    {
        get
        {
            foreach (var row in Ordered()) yield return row.KeyObject(this);
        }
    }

    /// <inheritdoc/>
    public bool ContainsKey(StoreKey key) => _rows.Count > 0 && _rows.ContainsKey(BtKey.Encode(key.PythonValue));

    /// <summary>
    /// A pull that will follow the next <see cref="AcquireLock"/>: the lock's round trip then fetches the rows too
    /// (not in lazy mode, whose pull reads keys only and is cheap already).
    /// </summary>
    public void PrepareLoad(StoreOptions options) => _prefetchFor = options is { LazyLoad: false } && _side is null ? options : null;

    /// <inheritdoc/>
    public void Load(StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _rowPickleOptions = options.PickleOptions is { } given ? given with { ShareShortStrings = true } : DefaultRowPickleOptions;
        _lazy = options.LazyLoad;
        var prefetched = ReferenceEquals(options, _prefetchFor) ? _prefetched : null;
        _prefetched = null;
        _prefetchFor = null;
        for (int attempt = 0; ; attempt++)
        {
            var raw = prefetched;
            prefetched = null;
            if (raw is null)
            {
                bool mayBeSplit = !_lazy && _side is null && _lock?.Connection is null;
                Run(c => raw = LoadOne(c, _lazy, mayBeSplit));
                if (raw!.Big && !raw.Moved) raw = LoadSplit();
            }
            if (!raw!.Moved)
            {
                Apply(raw);
                return;
            }
            // The partition moved: read the map again, and take the lock where the rows are now.
            Reroute(attempt);
            if (_lock is { } held && _side is null) held.MoveTo(Db);
        }
    }

    /// <summary>What a pull read: its rows (decoded, or with their pickled entries still to decode), generation and marks.</summary>
    /// <remarks><c>Big</c>: the statement found the store big enough to pull on two connections, and returned none of its rows.</remarks>
    private sealed record RawLoad(List<(Row Row, ReadOnlyMemory<byte>? Entry)> Rows, long Generation, bool Exists, bool Moved, bool Decoded, bool Big = false);

    /// <summary>
    /// The pull in one statement on <paramref name="c"/>, decoding each entry as it arrives. With
    /// <paramref name="mayBeSplit"/>, the statement first looks at the sizes of the first rows (from the row headers, no
    /// entry is read): a big store returns a mark instead of its rows, and is then pulled in halves (<see cref="LoadSplit"/>).
    /// </summary>
    private RawLoad LoadOne(NpgsqlConnection c, bool lazy, bool mayBeSplit = false)
    {
        using var batch = new NpgsqlBatch(c) { BatchCommands = { LoadCommand(lazy, mayBeSplit ? $" AND NOT {BigProbe}" : "", mayBeSplit) } };
        using var r = batch.ExecuteReader(System.Data.CommandBehavior.SequentialAccess);
        return ReadLoad(r, decode: !lazy);
    }

    /// <summary>True when the store's first <see cref="SplitProbeRows"/> rows hold at least <see cref="SplitPullBytes"/> bytes of entries.</summary>
    private string BigProbe => $"(SELECT coalesce(sum(octet_length(p.entry)), 0) >= {SplitPullBytes} FROM (SELECT entry FROM {T.Entries} WHERE identifier = $1 LIMIT {SplitProbeRows}) p)";

    /// <summary>A store whose first <see cref="SplitProbeRows"/> entries hold at least this many bytes is pulled on two connections.</summary>
    internal const long SplitPullBytes = 1 << 20;

    /// <summary>How many rows the split decision looks at (their sizes are read from the row headers, no entry is read).</summary>
    private const int SplitProbeRows = 4096;

    /// <summary>Sees (and may replace) the snapshot the second connection of a split pull imports (tests only).</summary>
    internal Func<string, string>? SnapshotToImport { get; set; }

    /// <summary>
    /// A pull of a big store on two connections that share one snapshot, each reading and decoding half of the rows
    /// (alternate places in the store's order) as they stream. The first runs in a REPEATABLE READ transaction and
    /// exports its snapshot; the second imports it (<c>SET TRANSACTION SNAPSHOT</c>), so both halves, and the
    /// generation, are one state of the store. Should the first transaction end before the second imported its
    /// snapshot (the half streamed faster than a connection opened), the pull is redone in one statement.
    /// </summary>
    private RawLoad LoadSplit()
    {
        RawLoad? first = null;
        Task<RawLoad?>? second = null;
        try
        {
            Run(c =>
            {
                // Each statement goes on its own (see Single): the half then streams in over a blocking socket.
                Single(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
                string snapshot = (string)SingleScalar(c, "SELECT pg_export_snapshot()")!;
                second = Task.Factory.StartNew(() => LoadSecondHalf(snapshot), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                using (var batch = new NpgsqlBatch(c) { BatchCommands = { LoadCommand(lazy: false, " AND seq % 2 = 0") } })
                using (var r = batch.ExecuteReader(System.Data.CommandBehavior.SequentialAccess))
                    first = ReadLoad(r, decode: true);
                Single(c, "COMMIT");
            });
        }
        finally
        {
            // Whatever happened to the first half, the second is not left running.
            if (second is not null && first is null) try { second.Wait(); } catch (AggregateException) { }
        }
        var rest = second!.GetAwaiter().GetResult();
        if (rest is null) return LoadOneRun();
        first!.Rows.AddRange(rest.Rows);
        return first;
    }

    private RawLoad LoadOneRun()
    {
        RawLoad? raw = null;
        Run(c => raw = LoadOne(c, lazy: false));
        return raw!;
    }

    /// <summary>
    /// A command of exactly one statement. Npgsql writes the second and later statements of a batch (or of a command
    /// text with several) asynchronously, and .NET then keeps that socket in non-blocking mode for good, emulating
    /// every later blocking read on it with its epoll thread and a wake-up of the caller. A connection that only ever
    /// runs single statements keeps truly blocking reads, pooled and reused included.
    /// </summary>
    private static void Single(NpgsqlConnection c, string sql)
    {
        using var cmd = new NpgsqlCommand(sql, c);
        cmd.ExecuteNonQuery();
    }

    /// <summary>The first value of one statement's result (see <see cref="Single"/>).</summary>
    private static object? SingleScalar(NpgsqlConnection c, string sql)
    {
        using var cmd = new NpgsqlCommand(sql, c);
        return cmd.ExecuteScalar();
    }

    /// <summary>The second half of a split pull, in the exported snapshot; null when that snapshot had ended already.</summary>
    private RawLoad? LoadSecondHalf(string snapshot)
    {
        if (!snapshot.All(ch => char.IsAsciiHexDigit(ch) || ch == '-'))
            throw new InvalidDataException($"{Location}: the server exported a snapshot named '{snapshot}', which is not a snapshot identifier");
        if (SnapshotToImport is { } replace) snapshot = replace(snapshot);
        using var c = OpenConnection();
        try
        {
            if (_side is not null) throw new InvalidOperationException("side data is not pulled in halves");
            Single(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            try
            {
                Single(c, $"SET TRANSACTION SNAPSHOT '{snapshot}'");
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidParameterValue or PostgresErrorCodes.ObjectNotInPrerequisiteState)
            {
                return null; // "invalid snapshot identifier": the exporting transaction has ended (the pooled connection's reset rolls back)
            }
            RawLoad half;
            using (var cmd = new NpgsqlCommand($"SELECT 2, key, seq, pkey, entry FROM {T.Entries} WHERE identifier = $1 AND seq % 2 = 1", c))
            {
                cmd.Parameters.Add(new() { Value = Identifier });
                using var r = cmd.ExecuteReader(System.Data.CommandBehavior.SequentialAccess);
                half = ReadLoad(r, decode: true);
            }
            Single(c, "COMMIT");
            return half;
        }
        catch (PostgresException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} refused: {e.MessageText} ({e.SqlState})", e);
        }
        catch (NpgsqlException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} cannot be reached (the connection failed: {e.Message})", e);
        }
    }

    /// <summary>
    /// The pull's statement. One statement is one snapshot: the generation, the partition's moved mark and every row
    /// are read consistently in a single round trip, without a transaction of their own.
    /// </summary>
    private NpgsqlBatchCommand LoadCommand(bool lazy, string entryFilter = "", bool markBig = false)
    {
        var cmd = new NpgsqlBatchCommand(LoadSql(lazy, entryFilter, markBig));
        cmd.Parameters.Add(new() { Value = Identifier });
        if (_side is not null) cmd.Parameters.Add(new() { Value = _side });
        if (T.Partition is int part) cmd.Parameters.Add(new() { Value = part });
        return cmd;
    }

    /// <summary>Reads a pull's result; with <paramref name="decode"/>, each entry is unpickled as it arrives (its key checked first).</summary>
    private RawLoad ReadLoad(NpgsqlDataReader r, bool decode)
    {
        var rows = new List<(Row, ReadOnlyMemory<byte>?)>();
        var arena = new BtEntryArena();
        long generation = 0;
        bool exists = false, moved = false, sawState = false, big = false;
        while (r.Read())
        {
            switch (r.GetInt32(0))
            {
                case 0:
                    exists = true;
                    generation = r.GetInt64(2);
                    break;
                case 3:
                    big = true;
                    break;
                case 1:
                    sawState = true;
                    moved |= r.GetInt64(2) != 0;
                    break;
                default:
                    var row = new Row(r.GetFieldValue<byte[]>(1), r.GetInt64(2), r.GetFieldValue<byte[]>(3), null);
                    if (!decode)
                    {
                        rows.Add((row, r.IsDBNull(4) ? null : arena.Read(r, 4)));
                        break;
                    }
                    DecodeOrDefer(row, r.IsDBNull(4) ? ReadOnlyMemory<byte>.Empty : arena.Read(r, 4));
                    rows.Add((row, null));
                    break;
            }
        }
        return new RawLoad(rows, generation, exists, moved || (T.Partition is not null && !sawState), decode, big);
    }

    /// <summary>Decodes what is left of a pull's rows (checking each row's key) and makes them the store's view.</summary>
    private void Apply(RawLoad raw)
    {
        _loaded = true;
        var rows = new Dictionary<byte[], Row>(raw.Rows.Count, ByteKeyComparer.Instance);
        foreach (var (row, entry) in raw.Rows)
        {
            if (!raw.Decoded)
            {
                if (_lazy) CheckedKey(row);
                else DecodeOrDefer(row, entry ?? ReadOnlyMemory<byte>.Empty);
            }
            rows[row.Key] = row;
        }
        _rows = rows;
        StopReadingAhead();
        if (!_lazy)
        {
            var order = Ordered();
            for (int i = 0; i < order.Length; i++) order[i].Place = i;
            _ahead = new ReadAhead(order.Length, i => { if (order[i].Readable) order[i].Read(this); }, AheadRows);
        }
        _generation = raw.Generation;
        Exists = raw.Exists || rows.Count > 0;
        _nextSeq = rows.Count == 0 ? 0 : rows.Values.Max(x => x.Seq) + 1;
    }

    /// <summary>
    /// The pull's single statement: rows tagged 0 (the store's generation), 1 (the partition's moved mark, on a
    /// partitioned layout), 2 (an entry: key, seq, pickled key and, unless lazy, the pickled entry) and, with
    /// <paramref name="markBig"/>, 3 (the store is big: its entries are not returned, they are pulled in halves).
    /// </summary>
    private string LoadSql(bool lazy, string entryFilter = "", bool markBig = false)
    {
        string entry = lazy ? "NULL::bytea" : "entry";
        var parts = new List<string>();
        if (_side is null) parts.Add($"SELECT 0, NULL::bytea, generation, NULL::bytea, NULL::bytea FROM {T.Stores} WHERE identifier = $1");
        if (T.Partition is not null) parts.Add($"SELECT 1, NULL::bytea, (moved::int)::int8, NULL::bytea, NULL::bytea FROM syconn.partition_state WHERE part = ${(_side is null ? 2 : 3)}");
        if (markBig) parts.Add($"SELECT 3, NULL::bytea, 1::int8, NULL::bytea, NULL::bytea WHERE {BigProbe}");
        parts.Add(_side is null
            ? $"SELECT 2, key, seq, pkey, {entry} FROM {T.Entries} WHERE identifier = $1{entryFilter}"
            : $"SELECT 2, key, seq, pkey, {entry} FROM {T.Side} WHERE identifier = $1 AND side = $2");
        return string.Join(" UNION ALL ", parts);
    }

    /// <inheritdoc/>
    public bool TryRead(StoreKey key, [MaybeNullWhen(false)] out object entry)
    {
        entry = null;
        if (_rows.Count == 0) return false;
        var k = BtKey.Encode(key.PythonValue);
        if (!_rows.TryGetValue(k, out var row)) return false;
        if (row.Readable)
        {
            _ahead?.Noted(row.Place);
            entry = row.Read(this);
            return true;
        }
        {
            using var c = OpenConnection();
            using var cmd = new NpgsqlCommand(_side is null
                ? $"SELECT entry FROM {T.Entries} WHERE identifier = $1 AND key = $2"
                : $"SELECT entry FROM {T.Side} WHERE identifier = $1 AND side = $3 AND key = $2", c);
            cmd.Parameters.Add(new() { Value = Identifier });
            cmd.Parameters.Add(new() { Value = k, NpgsqlDbType = NpgsqlDbType.Bytea });
            if (_side is not null) cmd.Parameters.Add(new() { Value = _side });
            object? found = null;
            Guard(() => found = cmd.ExecuteScalar());
            if (found is not byte[] bytes) return false;
            entry = Unpickle(bytes, key);
            return true;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<KeyValuePair<object, object>> ReadAll()
    {
        if (!_lazy)
        {
            foreach (var row in Ordered()) yield return KeyValuePair.Create(row.KeyObject(this), row.Read(this));
            yield break;
        }
        // Lazy: one streamed query in the store's order, on a pooled connection of its own.
        using var c = OpenConnection();
        using var cmd = new NpgsqlCommand(_side is null
            ? $"SELECT pkey, entry FROM {T.Entries} WHERE identifier = $1 ORDER BY seq, key"
            : $"SELECT pkey, entry FROM {T.Side} WHERE identifier = $1 AND side = $2 ORDER BY seq, key", c);
        cmd.Parameters.Add(new() { Value = Identifier });
        if (_side is not null) cmd.Parameters.Add(new() { Value = _side });
        NpgsqlDataReader? reader = null;
        Guard(() => reader = cmd.ExecuteReader(System.Data.CommandBehavior.SequentialAccess));
        using var r = reader!;
        while (NextRow(r, out var pkey, out var bytes))
        {
            var keyObject = UnpickleKey(pkey);
            yield return KeyValuePair.Create(keyObject, Unpickle(bytes, StoreKey.FromPython(keyObject)));
        }
    }

    /// <summary>The next (pickled key, pickled entry) of a streamed read; a failed connection is an error naming the store.</summary>
    private bool NextRow(NpgsqlDataReader r, out byte[] pkey, out byte[] entry)
    {
        byte[]? k = null, e = null;
        bool more = false;
        Guard(() =>
        {
            more = r.Read();
            if (more)
            {
                k = r.GetFieldValue<byte[]>(0);
                e = r.GetFieldValue<byte[]>(1);
            }
        });
        pkey = k ?? [];
        entry = e ?? [];
        return more;
    }

    /// <inheritdoc/>
    public void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(removed);
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(options);
        // An entry that cannot be stored writes nothing: few rows are pickled before the first byte goes out, many while
        // the COPY streams, inside the push's transaction (see EncodeEntries).
        var deleted = new List<byte[]>(removed.Count + changed.Count);
        foreach (var k in removed) deleted.Add(BtKey.Encode(k));
        var removedKeys = deleted.Count == 0 ? null : new HashSet<byte[]>(deleted, ByteKeyComparer.Instance);
        long seq = _nextSeq;
        var rows = new List<Row>(changed.Count);
        foreach (var (k, v) in changed)
        {
            var key = BtKey.Encode(k);
            deleted.Add(key);
            // A key removed and set again in one push moves to the end, as in a dict.
            bool known = _rows.TryGetValue(key, out var old) && removedKeys?.Contains(key) != true;
            rows.Add(new Row(key, known ? old!.Seq : seq++, known ? old!.PKey : Pickle.Dump(k, options.PickleProtocol), null) { Value = v, WrittenKey = k });
        }
        using (var encoder = EncodeEntries(rows, options))
            Write(deleteAll: false, deleted, rows, options, encoder);
        foreach (var k in deleted) _rows.Remove(k);
        foreach (var row in rows)
        {
            row.Written(_lazy);
            _rows[row.Key] = row;
        }
        _nextSeq = seq;
    }

    /// <inheritdoc/>
    public void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(options);
        var rows = new List<Row>();
        var seen = new Dictionary<byte[], Row>(ByteKeyComparer.Instance);
        foreach (var (k, v) in entries)
        {
            var key = BtKey.Encode(k);
            if (seen.TryGetValue(key, out var earlier))
            {
                earlier.Value = v; // a repeated key keeps its first place, as in a dict
                continue;
            }
            var row = new Row(key, rows.Count, Pickle.Dump(k, options.PickleProtocol), null) { Value = v, WrittenKey = k };
            seen[key] = row;
            rows.Add(row);
        }
        using (var encoder = EncodeEntries(rows, options))
            Write(deleteAll: true, [], rows, options, encoder);
        foreach (var row in rows) row.Written(_lazy);
        _rows = seen;
        _nextSeq = rows.Count;
    }

    /// <summary>The pull statement to run in the lock's round trip, when a pull was announced (<see cref="PrepareLoad"/>).</summary>
    private NpgsqlBatchCommand? PrefetchCommand()
    {
        _prefetched = null;
        return _prefetchFor is null ? null : LoadCommand(lazy: false);
    }

    /// <inheritdoc/>
    public IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default)
    {
        ThrowIfSide();
        try
        {
            var l = BtLock.Acquire(Db, Identifier, options, ct, PrefetchCommand(), r => _prefetched = ReadLoad(r, decode: false));
            _lock = l;
            return l;
        }
        catch (IOException e) when (e is not StorageLockTimeoutException)
        {
            throw new IOException($"{Location}: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public async Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default)
    {
        ThrowIfSide();
        try
        {
            var l = await BtLock.AcquireAsync(Db, Identifier, options, ct, PrefetchCommand(), r => _prefetched = ReadLoad(r, decode: false)).ConfigureAwait(false);
            _lock = l;
            return l;
        }
        catch (IOException e) when (e is not StorageLockTimeoutException)
        {
            throw new IOException($"{Location}: {e.Message}", e);
        }
    }

    /// <summary>The entry store at <paramref name="address"/>: a <c>bt:</c> address in this store's database unless <paramref name="options"/> names another.</summary>
    public IEntryStore OpenRelated(string address, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ConnectionString is null && address.StartsWith(EntryStores.BtScheme + ":", StringComparison.Ordinal))
            return new PostgresEntryStore(_db, address[(EntryStores.BtScheme.Length + 1)..], Kind);
        return EntryStores.Open(address, Kind, options);
    }

    /// <inheritdoc/>
    public IEntryStore OpenSideStore(string name)
    {
        ThrowIfSide();
        if (string.IsNullOrEmpty(name) || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_'))
            throw new ArgumentException($"'{name}' is not a side store name (use letters, digits and '_')", nameof(name));
        return new PostgresEntryStore(_db, Identifier, EntryStoreKind.Npz, name);
    }

    /// <inheritdoc/>
    public void EnsureWritable() => Run(static _ => { });

    /// <summary>
    /// Moves every row of the store (entries and side data) to the new identifier <c>IDENTIFIER.corrupt-UTCTIME</c>, in
    /// one transaction, so the store starts empty and the damaged rows stay readable there (with <c>LazyLoad</c>).
    /// </summary>
    /// <returns>The address the rows went to.</returns>
    public string MoveAside()
    {
        ThrowIfSide();
        string aside = $"{Identifier}.corrupt-{DateTime.UtcNow:yyyyMMdd'T'HHmmss.fff'Z'}";
        if (T.Partition is int part && _db.PartitionMap is { } map)
        {
            // The rows stay on their shard: pick an aside name that hashes to the same partition.
            string stem = aside;
            for (int n = 1; map.PartitionOf(_db, aside) != part; n++)
            {
                if (n > 10_000) throw new InvalidOperationException($"{Location}: found no aside name in partition {part}");
                aside = $"{stem}.{n}";
            }
        }
        Run(c =>
        {
            using var tx = c.BeginTransaction();
            foreach (var sql in new[]
            {
                $"UPDATE {T.Entries} SET identifier = $2 WHERE identifier = $1",
                $"UPDATE {T.Side} SET identifier = $2 WHERE identifier = $1",
                $"UPDATE {T.Stores} SET identifier = $2, updated = now() WHERE identifier = $1",
            })
            {
                // One statement per command (see Single), so the pooled connection keeps blocking reads.
                using var cmd = new NpgsqlCommand(sql, c, tx) { Parameters = { new() { Value = Identifier }, new() { Value = aside } } };
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
        });
        _rows = new(ByteKeyComparer.Instance);
        _generation = 0;
        return "bt:" + aside;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        StopReadingAhead();
        _rows = new(ByteKeyComparer.Instance);
        _lock = null;
    }

    /// <summary>
    /// A pulled entry whose opcodes are well formed is kept as bytes and decoded when its key is first read (as the
    /// file store's index does): a pull of many small rows then makes no objects for the keys nobody reads. Its key
    /// is checked now; an entry that is not a well-formed pickle is decoded now, so the pull reports it.
    /// </summary>
    private void DecodeOrDefer(Row row, ReadOnlyMemory<byte> entry)
    {
        var keyObject = CheckedKey(row);
        if (PickleMemoScan.IsWellFormed(entry.Span, _rowPickleOptions.MaxMemoEntries)) row.Defer(entry);
        else row.Value = Unpickle(entry, StoreKey.FromPython(keyObject));
    }

    // Reading ahead (ReadAhead) of a caller that reads row after row in the store's order: at most AheadRows rows
    // past the caller's; one per pull, ended by the next pull or disposal.
    private const int AheadRows = 4096;
    private ReadAhead? _ahead;

    /// <summary>Ends reading ahead of the rows pulled (a new pull, or disposal).</summary>
    private void StopReadingAhead()
    {
        _ahead?.Stop();
        _ahead = null;
    }

    /// <summary>Whether no worker is reading ahead (for tests).</summary>
    internal bool AheadIdle => _ahead?.Idle ?? true;

    /// <summary>How many pulled rows hold a decoded tree (for tests).</summary>
    internal int RowsDecoded => _rows.Values.Count(r => r.Value is not null);

    private void ThrowIfSide()
    {
        if (_side is not null) throw new InvalidOperationException($"{Location}: side data is guarded by its store's lock and has no lock of its own");
    }

    private Row[] Ordered()
    {
        var rows = _rows.Values.ToArray();
        Array.Sort(rows, static (a, b) => a.Seq != b.Seq ? a.Seq.CompareTo(b.Seq) : a.Key.AsSpan().SequenceCompareTo(b.Key));
        return rows;
    }

    /// <summary>
    /// Pickles the rows' entries. A push of few rows (one INSERT) has them all pickled before anything is sent, so an
    /// entry that cannot be stored writes nothing. A push through COPY pickles them on background threads while the
    /// COPY streams the ones already done, in the rows' order (the returned encoder); an entry that cannot be stored
    /// then fails the COPY, and its transaction, so again nothing is written. Either way the first failing row, in the
    /// rows' order, is the one reported.
    /// </summary>
    private EntryEncoder? EncodeEntries(List<Row> rows, StoreOptions options)
    {
        if (rows.Count <= InsertRowLimit)
        {
            foreach (var row in rows) row.Entry = Encode(row.WrittenKey!, row.Value!, options);
            return null;
        }
        return new EntryEncoder(rows, row => Encode(row.WrittenKey!, row.Value!, options), Math.Clamp(Environment.ProcessorCount - 1, 1, 4));
    }

    /// <summary>
    /// Pickles rows on background threads, each taking the next row not yet taken, so rows finish in about their order;
    /// <see cref="Get"/> waits for one. Disposing stops the threads after their current row.
    /// </summary>
    private sealed class EntryEncoder : IDisposable
    {
        private readonly List<Row> _rows;
        private readonly Func<Row, byte[]> _encode;
        private readonly Exception?[] _errors;
        private readonly bool[] _done;
        private readonly object _gate = new();
        private readonly Task[] _workers;
        private int _next = -1;
        private volatile bool _stop;

        public EntryEncoder(List<Row> rows, Func<Row, byte[]> encode, int workers)
        {
            _rows = rows;
            _encode = encode;
            _errors = new Exception?[rows.Count];
            _done = new bool[rows.Count];
            _workers = new Task[workers];
            for (int w = 0; w < workers; w++)
                _workers[w] = Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        private void Work()
        {
            while (!_stop)
            {
                int i = Interlocked.Increment(ref _next);
                if (i >= _rows.Count) return;
                byte[]? bytes = null;
                Exception? error = null;
                try
                {
                    bytes = _encode(_rows[i]);
                }
                catch (Exception e)
                {
                    error = e; // reported when the COPY reaches this row
                }
                lock (_gate)
                {
                    _rows[i].Entry = bytes;
                    _errors[i] = error;
                    _done[i] = true;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        /// <summary>Row <paramref name="i"/>'s pickled entry, once it is done; rethrows what its pickling threw.</summary>
        public byte[] Get(int i)
        {
            lock (_gate)
            {
                while (!_done[i]) Monitor.Wait(_gate);
                if (_errors[i] is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
                return _rows[i].Entry!;
            }
        }

        public void Dispose()
        {
            _stop = true;
            Task.WaitAll(_workers);
        }
    }

    private byte[] Encode(object key, object entry, StoreOptions options)
    {
        byte[] bytes = Pickle.Dump(entry, options.PickleProtocol);
        if (bytes.Length > MaxEntryBytes)
            throw new ArgumentException($"{Location}: the entry of key {StoreKey.FromPython(key)} is {bytes.Length:N0} bytes pickled, more than a BT row holds ({MaxEntryBytes:N0} bytes, PostgreSQL's field limit); nothing was written. Split the object, or keep this store on files");
        return bytes;
    }

    private object Unpickle(ReadOnlyMemory<byte> bytes, StoreKey key)
    {
        try
        {
            // No source name: formatting one per row was a tenth of what decoding a small entry allocates; the error
            // below names the store and the key.
            return Pickle.Load(bytes, _rowPickleOptions);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{Location}: the entry of key {key} cannot be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// The row's key as pickled, checked against its canonical key: a row whose two disagree (or whose pickled key is
    /// no key at all) is damaged, and would otherwise list a key that cannot be found.
    /// </summary>
    private object CheckedKey(Row row)
    {
        var keyObject = row.KeyObject(this);
        byte[] canonical;
        try
        {
            canonical = BtKey.Encode(keyObject);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{Location}: a stored key is a {keyObject.GetType().Name}, which cannot be a key ({e.Message}); the row is damaged", e);
        }
        if (!canonical.AsSpan().SequenceEqual(row.Key))
            throw new InvalidDataException($"{Location}: the row of key {Convert.ToHexString(row.Key)} holds the pickled key {StoreKey.FromPython(keyObject)}, another key; the row is damaged");
        return keyObject;
    }

    internal object UnpickleKey(byte[] pkey)
    {
        if (PickleReader.TryReadPlainInt(pkey, out var plain)) return plain;
        try
        {
            return Pickle.Load(pkey, _rowPickleOptions, $"{Location} (a stored key)");
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            throw new InvalidDataException($"{Location}: a stored key cannot be read: {e.Message}", e);
        }
    }

    /// <summary>A pooled connection to the server that holds this store; an unreachable server is an error naming the store.</summary>
    private NpgsqlConnection OpenConnection()
    {
        try
        {
            return Db.Open();
        }
        catch (IOException e)
        {
            throw new IOException($"{Location}: {e.Message}", e);
        }
    }

    /// <summary>Runs <paramref name="work"/> on the lock's pinned connection when this store holds it, else on a pooled one.</summary>
    private void Run(Action<NpgsqlConnection> work)
    {
        var pinned = _lock?.Connection;
        if (pinned is not null)
        {
            Guard(() => work(pinned));
            return;
        }
        using var c = OpenConnection();
        Guard(() => work(c));
    }

    private void Guard(Action work)
    {
        try
        {
            work();
        }
        catch (PostgresException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} refused: {e.MessageText} ({e.SqlState})", e);
        }
        catch (NpgsqlException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} cannot be reached (the connection failed: {e.Message})", e);
        }
    }

    /// <summary>Runs one statement built by <see cref="Command"/> as a command of its own (see <see cref="Single"/>).</summary>
    private static void RunCommand(NpgsqlConnection c, NpgsqlBatchCommand statement)
    {
        using var batch = new NpgsqlBatch(c) { BatchCommands = { statement } };
        batch.ExecuteNonQuery();
    }

    private NpgsqlBatchCommand Command(string sql)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        cmd.Parameters.Add(new() { Value = Identifier });
        if (_side is not null) cmd.Parameters.Add(new() { Value = _side });
        return cmd;
    }

    /// <summary>One push in one transaction: bump the generation (checking it in optimistic mode), delete, insert.</summary>
    private void Write(bool deleteAll, List<byte[]> deleted, List<Row> rows, StoreOptions options, EntryEncoder? encoder)
    {
        // An optimistic push checks that nobody pushed since the pull; so does a locked one, which catches a writer that
        // did not lock (an optimistic or unlocked one) instead of overwriting its push. Only an unlocked push does not.
        if (_lock is { IsLost: true })
            throw new IOException($"{Location}: the connection that held the store's lock broke, so the lock is gone and another writer may have pushed; nothing was written: pull again");
        // (A locked store that never pulled, such as a conversion's destination, has no pulled generation to keep.)
        bool checkGeneration = _side is null && (options.Optimistic || (_loaded && _lock is { IsHeld: true }));
        for (int attempt = 0; !TryWrite(deleteAll, deleted, rows, checkGeneration, options.Durable, encoder); attempt++)
        {
            // The store's partition moved to another shard after this store was routed: follow it. The copy there
            // carries the generation, so checking it keeps an optimistic or a locked push from overwriting a newer one.
            Reroute(attempt);
            if (_lock is { } held && _side is null)
            {
                held.MoveTo(Db);
                checkGeneration = true;
            }
        }
    }

    /// <summary>Follows a moved partition: rereads the partition map (after a pause that grows with the attempts).</summary>
    private void Reroute(int attempt)
    {
        if (attempt >= 100)
            throw new IOException($"{Location}: its partition is marked as moved on {Db.Description} but the BT coordinator {_db.Description} still maps it there; a partition move was interrupted: rerun bt-move-partition to finish it");
        BtRouter.Forget(_db);
        _route = null;
        if (attempt > 0) Thread.Sleep(Math.Min(500, 20 * attempt));
    }

    /// <summary>
    /// One push in one transaction; false when the partition turned out to have moved (nothing was written). Every
    /// statement is a command of its own (see <see cref="Single"/>); a store whose lock is to be released by this push
    /// (<see cref="IStoreLock.ReleaseWithNextWrite"/>) unlocks right after the COMMIT.
    /// </summary>
    private bool TryWrite(bool deleteAll, List<byte[]> deleted, List<Row> rows, bool optimistic, bool durable, EntryEncoder? encoder)
    {
        if (_side is null && T.Partition is null && !deleteAll && rows.Count <= InsertRowLimit)
        {
            WriteInOneStatement(deleted, rows, optimistic, durable);
            return true;
        }
        long newGeneration = _generation;
        ulong xid = 0;
        bool committing = false, inTransaction = false, committed = false;
        var held = _lock;
        var pinned = held?.Connection;
        bool unlockWithCommit = pinned is not null && held!.ReleaseRequested;
        var c = pinned ?? OpenConnection();
        try
        {
            // One statement per command (see Single): the connection keeps blocking reads, and the extra round trips
            // are nothing next to the rows a push of this path sends.
            Single(c, "BEGIN");
            inTransaction = true;
            // Durable = false: the commit returns before the server has flushed its log, as a file push that skips
            // fsync; a server crash may lose the last pushes (never half of one), a client crash loses nothing.
            if (!durable) Single(c, "SET LOCAL synchronous_commit = off");
            if (T.Partition is int part)
            {
                using var moved = new NpgsqlCommand("SELECT moved FROM syconn.partition_state WHERE part = $1 FOR SHARE", c) { Parameters = { new() { Value = part } } };
                if (moved.ExecuteScalar() is not false) return false; // moved (or no state row): the finally rolls back
            }
            using (var bump = new NpgsqlCommand(_side is null ? "" : "SELECT 0::bigint, pg_current_xact_id()::text", c))
            {
                if (_side is null)
                {
                    // On a single server the push's token joins the store's recent ones (see WriteInOneStatement), so
                    // that a one-statement push whose answer was lost can tell every later push from its own.
                    bool single = T.Partition is null;
                    string tokenColumn = single ? ", pushes" : "", tokenValue = single ? $", ARRAY[${(optimistic ? 5 : 4)}::bigint]" : "";
                    string tokenSet = single ? $", pushes = (EXCLUDED.pushes || s.pushes)[1:{BtSchema.PushTokens}]" : "";
                    bump.CommandText = optimistic
                        ? $"""
                          INSERT INTO {T.Stores} AS s (identifier, class, kind, generation{tokenColumn}) VALUES ($1, $2, $3, 1{tokenValue})
                          ON CONFLICT (identifier) DO UPDATE SET generation = s.generation + 1, updated = now(), class = coalesce(s.class, EXCLUDED.class){tokenSet}
                          WHERE s.generation = $4
                          RETURNING generation, pg_current_xact_id()::text
                          """
                        : $"""
                          INSERT INTO {T.Stores} AS s (identifier, class, kind, generation{tokenColumn}) VALUES ($1, $2, $3, 1{tokenValue})
                          ON CONFLICT (identifier) DO UPDATE SET generation = s.generation + 1, updated = now(), class = coalesce(s.class, EXCLUDED.class){tokenSet}
                          RETURNING generation, pg_current_xact_id()::text
                          """;
                    bump.Parameters.Add(new() { Value = Identifier });
                    bump.Parameters.Add(new() { Value = (object?)_storeClass ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                    bump.Parameters.Add(new() { Value = Kind == EntryStoreKind.Npz ? "npz" : "pickle" });
                    if (optimistic) bump.Parameters.Add(new() { Value = _generation });
                    if (single) bump.Parameters.Add(new() { Value = NewPushToken() });
                }
                using var r = bump.ExecuteReader();
                if (!r.Read())
                {
                    r.Close();
                    Rollback(c);
                    inTransaction = false;
                    throw new StoreConflictException(Location, _generation, CurrentGeneration(c));
                }
                newGeneration = r.GetInt64(0);
                xid = ulong.Parse(r.GetString(1), CultureInfo.InvariantCulture);
            }
            if (optimistic && newGeneration != _generation + 1)
                throw new StoreConflictException(Location, _generation, newGeneration - 1);
            string table = _side is null ? $"{T.Entries}" : $"{T.Side}";
            string scope = _side is null ? "identifier = $1" : "identifier = $1 AND side = $2";
            if (deleteAll) RunCommand(c, Command($"DELETE FROM {table} WHERE {scope}"));
            else if (deleted.Count > 0)
            {
                var del = Command($"DELETE FROM {table} WHERE {scope} AND key = ANY(${(_side is null ? 2 : 3)})");
                del.Parameters.Add(new() { Value = deleted.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                RunCommand(c, del);
            }
            if (rows.Count > 0 && rows.Count <= InsertRowLimit)
            {
                int p = _side is null ? 2 : 3;
                var ins = Command($"INSERT INTO {table} ({(_side is null ? "identifier" : "identifier, side")}, key, seq, pkey, entry) " +
                    $"SELECT {(_side is null ? "$1" : "$1, $2")}, k, s, p, e FROM unnest(${p}::bytea[], ${p + 1}::bigint[], ${p + 2}::bytea[], ${p + 3}::bytea[]) AS u(k, s, p, e)");
                ins.Parameters.Add(new() { Value = rows.Select(r => r.Key).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                ins.Parameters.Add(new() { Value = rows.Select(r => r.Seq).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
                ins.Parameters.Add(new() { Value = rows.Select(r => r.PKey).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                ins.Parameters.Add(new() { Value = rows.Select(r => r.Entry!).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                RunCommand(c, ins);
            }
            if (rows.Count > InsertRowLimit) Copy(c, rows, encoder);
            BeforeCommit?.Invoke(c);
            committing = true;
            Single(c, "COMMIT");
            committed = true;
            committing = false;
            if (unlockWithCommit)
            {
                try
                {
                    using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", c) { Parameters = { new() { Value = held!.Key } } };
                    unlock.ExecuteNonQuery();
                }
                catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
                {
                    // The push is committed; a session that broke here took its lock with it.
                }
            }
        }
        catch (StoreConflictException)
        {
            throw;
        }
        catch (Exception e) when (committing && CommitOutcomeUnknown(e, c))
        {
            // The commit went out but its answer did not come back: ask the server what became of it.
            inTransaction = false;
            ResolveUnknownCommit(xid, newGeneration, e);
            committed = true;
            unlockWithCommit = false; // the session is gone, and its lock with it
        }
        catch (PostgresException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} refused the push: {e.MessageText} ({e.SqlState}); nothing was written", e);
        }
        catch (NpgsqlException e)
        {
            throw new IOException($"{Location}: the connection to the BT database {Db.Description} failed during the push: {e.Message}; nothing was written (the server rolls back an unfinished transaction)", e);
        }
        finally
        {
            if (inTransaction && !committed) Rollback(c);
            if (pinned is null) c.Dispose();
        }
        if (committed && held is not null && (unlockWithCommit || held.ReleaseRequested)) held.ReleasedByWrite();
        _generation = _side is null ? newGeneration : 0;
        Exists = true;
        return true;
    }

    /// <summary>
    /// A push of few rows to a single server in one round trip: one statement (the generation bump, the deletes and the
    /// upserts) in a transaction of its own, which the server commits before it answers. Npgsql writes a one-statement
    /// command on the caller's thread, where a batch of several has its later statements written from the thread pool.
    /// The writes depend on the bump's row, so a bump refused by the generation check writes nothing. A store whose lock
    /// this push releases (<see cref="IStoreLock.ReleaseWithNextWrite"/>) turns its session lock into a transaction lock
    /// in the same statement, once every write of it has succeeded, so the commit itself releases the lock: never
    /// before the push is visible. The bump adds a random token to <c>stores.pushes</c>: when the connection breaks
    /// before the answer comes, the token tells whether the push committed (<see cref="ResolveUnknownPush"/>).
    /// </summary>
    private void WriteInOneStatement(List<byte[]> deleted, List<Row> rows, bool checkGeneration, bool durable)
    {
        long newGeneration = _generation;
        bool sent = false, committed = false, swapped = false;
        var held = _lock;
        var pinned = held?.Connection;
        bool unlockWithCommit = pinned is not null && held!.ReleaseRequested;
        var c = pinned ?? OpenConnection();
        long token = NewPushToken();
        try
        {
            var written = new HashSet<byte[]>(rows.Select(r => r.Key), ByteKeyComparer.Instance);
            using var cmd = new NpgsqlCommand { Connection = c };
            string P(object? value, NpgsqlDbType type)
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value, NpgsqlDbType = type });
                return "$" + cmd.Parameters.Count.ToString(CultureInfo.InvariantCulture);
            }
            string id = P(Identifier, NpgsqlDbType.Text);
            string tok = P(token, NpgsqlDbType.Bigint);
            string cls = P(_storeClass, NpgsqlDbType.Text), kind = P(Kind == EntryStoreKind.Npz ? "npz" : "pickle", NpgsqlDbType.Text);
            string bump = $"""
                INSERT INTO {T.Stores} AS s (identifier, class, kind, generation, pushes) VALUES ({id}, {cls}, {kind}, 1, ARRAY[{tok}])
                  ON CONFLICT (identifier) DO UPDATE SET generation = s.generation + 1, updated = now(), class = coalesce(s.class, EXCLUDED.class),
                    pushes = (EXCLUDED.pushes || s.pushes)[1:{BtSchema.PushTokens}]
                """;
            if (checkGeneration)
            {
                // A store checked at generation g > 0 is updated only from g (never created again); at 0, created or updated from 0.
                string g = P(_generation, NpgsqlDbType.Bigint);
                bump = _generation == 0
                    ? bump + $" WHERE s.generation = {g}"
                    : $"""
                      UPDATE {T.Stores} AS s SET generation = s.generation + 1, updated = now(), class = coalesce(s.class, {cls}),
                        pushes = (ARRAY[{tok}] || s.pushes)[1:{BtSchema.PushTokens}]
                      WHERE s.identifier = {id} AND s.generation = {g}
                      """;
            }
            var goneKeys = deleted.Where(k => !written.Contains(k)).ToArray();
            string keys = P(rows.Select(r => r.Key).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
            string seqs = P(rows.Select(r => r.Seq).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
            string pkeys = P(rows.Select(r => r.PKey).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
            string entries = P(rows.Select(r => r.Entry!).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bytea);
            // Durable = false: the commit returns before the server has flushed its log, as a file push that skips fsync.
            string extra = (durable ? "" : ", set_config('synchronous_commit', 'off', true)")
                + (unlockWithCommit ? $", pg_advisory_xact_lock({P(held!.Key, NpgsqlDbType.Bigint)}), pg_advisory_unlock($" + cmd.Parameters.Count.ToString(CultureInfo.InvariantCulture) + ")" : "");
            // A push that deletes nothing has no delete in its statement. With one, the statement planned with its values
            // looked cheaper than its generic plan whenever the table held a big store beside small ones, so the server
            // planned it again on every push (a third of its time in a locked read-modify-write); and a generic plan of
            // the delete, made while the table was small, would scan the whole table once it has grown. Pushes that delete
            // keys are planned each time, with the keys in view.
            string gone = goneKeys.Length == 0 ? "" : $"""
                gone AS (DELETE FROM {T.Entries} e USING bump WHERE e.identifier = {id} AND e.key = ANY({P(goneKeys, NpgsqlDbType.Array | NpgsqlDbType.Bytea)}) RETURNING 1),
                """;
            // The select list is computed only after the joined counts have run every write to its end, so the lock
            // changes hands (session to transaction) only when nothing of the statement can fail any more.
            cmd.CommandText = $"""
                WITH bump AS ({bump}
                  RETURNING generation),
                {gone}
                put AS (
                  INSERT INTO {T.Entries} (identifier, key, seq, pkey, entry)
                  SELECT {id}, k, s, p, e FROM bump, unnest({keys}, {seqs}, {pkeys}, {entries}) AS u(k, s, p, e)
                  ON CONFLICT (identifier, key) DO UPDATE SET seq = EXCLUDED.seq, pkey = EXCLUDED.pkey, entry = EXCLUDED.entry
                  RETURNING 1)
                SELECT b.generation{extra}
                FROM bump b, {(gone.Length == 0 ? "" : "(SELECT count(*) FROM gone) g, ")}(SELECT count(*) FROM put) u
                """;
            BeforeCommit?.Invoke(c);
            sent = true;
            using (var r = cmd.ExecuteReader())
            {
                if (!r.Read())
                {
                    r.Close();
                    throw new StoreConflictException(Location, _generation, CurrentGeneration(c));
                }
                newGeneration = r.GetInt64(0);
                swapped = unlockWithCommit;
            }
            committed = true;
        }
        catch (StoreConflictException)
        {
            throw;
        }
        catch (Exception e) when (sent && CommitOutcomeUnknown(e, c))
        {
            // The statement went out but its answer did not come back: ask the server what became of it.
            newGeneration = ResolveUnknownPush(token, _generation, e);
            committed = true;
            swapped = unlockWithCommit; // the session is gone, and its lock with it
        }
        catch (PostgresException e)
        {
            throw new IOException($"{Location}: the BT database {Db.Description} refused the push: {e.MessageText} ({e.SqlState}); nothing was written", e);
        }
        catch (NpgsqlException e)
        {
            throw new IOException($"{Location}: the connection to the BT database {Db.Description} failed during the push: {e.Message}; nothing was written", e);
        }
        finally
        {
            if (pinned is null) c.Dispose();
            // A lock handed to the transaction went with its rollback: the store does not hold it any more.
            if (swapped && !committed) held!.ReleasedByWrite();
        }
        if (committed && held is not null && (swapped || held.ReleaseRequested)) held.ReleasedByWrite();
        _generation = newGeneration;
        Exists = true;
    }

    /// <summary>A push token: random and never 0.</summary>
    private static long NewPushToken()
    {
        long t;
        do t = Random.Shared.NextInt64(long.MinValue, long.MaxValue); while (t == 0);
        return t;
    }

    /// <summary>Ends an open transaction without writing, where the connection still works (a broken one has ended it already).</summary>
    private static void Rollback(NpgsqlConnection c)
    {
        if (c.FullState != System.Data.ConnectionState.Open) return;
        try
        {
            using var cmd = new NpgsqlCommand("ROLLBACK", c);
            cmd.ExecuteNonQuery();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The session is unusable: the server ends the transaction with it.
        }
    }

    /// <summary>Streams the rows through binary COPY, each as soon as its entry is pickled.</summary>
    private void Copy(NpgsqlConnection c, List<Row> rows, EntryEncoder? encoder)
    {
        using var w = c.BeginBinaryImport(_side is null
            ? $"COPY {T.Entries} (identifier, key, seq, pkey, entry) FROM STDIN (FORMAT BINARY)"
            : $"COPY {T.Side} (identifier, side, key, seq, pkey, entry) FROM STDIN (FORMAT BINARY)");
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            byte[] entry = encoder?.Get(i) ?? row.Entry!;
            w.StartRow();
            w.Write(Identifier, NpgsqlDbType.Text);
            if (_side is not null) w.Write(_side, NpgsqlDbType.Text);
            w.Write(row.Key, NpgsqlDbType.Bytea);
            w.Write(row.Seq, NpgsqlDbType.Bigint);
            w.Write(row.PKey, NpgsqlDbType.Bytea);
            w.Write(entry, NpgsqlDbType.Bytea);
        }
        w.Complete();
    }

    private long CurrentGeneration(NpgsqlConnection c)
    {
        using var cmd = new NpgsqlCommand($"SELECT generation FROM {T.Stores} WHERE identifier = $1", c) { Parameters = { new() { Value = Identifier } } };
        return cmd.ExecuteScalar() is long g ? g : 0;
    }

    /// <summary>
    /// True when a COMMIT that went out failed in a way that says nothing of its outcome: the connection broke (a
    /// client-side Npgsql error, an I/O error, a disposed socket, or a server error on a connection left broken).
    /// </summary>
    private static bool CommitOutcomeUnknown(Exception e, NpgsqlConnection c) =>
        e is NpgsqlException and not PostgresException or IOException or ObjectDisposedException
        || e is PostgresException && c.FullState.HasFlag(System.Data.ConnectionState.Broken);

    /// <summary>
    /// After a commit whose answer was lost: reconnects (waiting up to a minute for the server to come back) and asks
    /// it whether the push's transaction committed. Returns when it did; throws when it did not or cannot be told.
    /// </summary>
    internal void ResolveUnknownCommit(ulong xid, long generation, Exception lost)
    {
        var deadline = DateTime.UtcNow + AskAfterLossFor;
        Exception last = lost;
        while (TryAskAfterLoss(c =>
        {
            try
            {
                using var cmd = new NpgsqlCommand($"SELECT pg_xact_status($1::text::xid8), (SELECT generation FROM {T.Stores} WHERE identifier = $2)", c)
                {
                    Parameters = { new() { Value = xid.ToString(CultureInfo.InvariantCulture) }, new() { Value = Identifier } },
                };
                using var r = cmd.ExecuteReader();
                r.Read();
                return (Status: r.IsDBNull(0) ? null : r.GetString(0), Current: r.IsDBNull(1) ? 0 : r.GetInt64(1));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidParameterValue)
            {
                // "transaction ID is in the future": the server crashed before anything of the transaction reached its
                // log, so recovery restarted the counter below it. A committed transaction is always in the log.
                return (Status: "lost in a server crash (never logged)", Current: -1L);
            }
        }, deadline, ref last, out var answer))
        {
            var (status, current) = answer;
            switch (status)
            {
                case "committed":
                    if (_side is null && current < generation)
                        throw new InvalidDataException($"{Location}: the push's transaction {xid} committed but the store's generation is {current}, below its {generation}");
                    return;
                case "in progress":
                    Thread.Sleep(50);
                    continue;
                default:
                    throw new IOException($"{Location}: the connection was lost while the push committed; the server reports its transaction {xid} as {status ?? "unknown"}{(current >= 0 ? $" (generation {current})" : "")}, so nothing was written", lost);
            }
        }
        throw new IOException($"{Location}: the connection was lost while the push committed and the BT database {Db.Description} could not be asked within a minute whether transaction {xid} committed; reread the store (its generation was {_generation} before this push) before writing again", last);
    }

    /// <summary>
    /// After a one-statement push whose answer was lost (<see cref="WriteInOneStatement"/>): reconnects (waiting up to
    /// a minute for the server to come back) and looks for the push's <paramref name="token"/> among the store's recent
    /// ones. Returns the generation the push made when it committed; throws when it did not (nothing was written) or
    /// when the store has since had so many pushes that its token would have dropped out (the outcome cannot be told).
    /// </summary>
    /// <param name="token">The push's token.</param>
    /// <param name="before">The generation the store had when it was pulled (the push made a later one).</param>
    /// <param name="lost">The failure that lost the answer.</param>
    internal long ResolveUnknownPush(long token, long before, Exception lost)
    {
        Exception last = lost;
        if (!TryAskAfterLoss(c =>
            {
                using var cmd = new NpgsqlCommand($"SELECT generation, array_position(pushes, $2) FROM {T.Stores} WHERE identifier = $1", c)
                {
                    Parameters = { new() { Value = Identifier }, new() { Value = token } },
                };
                using var r = cmd.ExecuteReader();
                bool found = r.Read();
                return (Generation: found ? r.GetInt64(0) : (long?)null, Place: found && !r.IsDBNull(1) ? r.GetInt32(1) : 0);
            }, DateTime.UtcNow + AskAfterLossFor, ref last, out var answer))
            throw new IOException($"{Location}: the connection was lost before the push's answer came, and the BT database {Db.Description} could not be asked within a minute whether the push committed; reread the store (its generation was {before} before this push) before writing again", last);
        var (generation, place) = answer;
        // Tokens are kept newest first: the one at place p (from 1) is of the push that made generation G - p + 1.
        if (place > 0) return generation!.Value - place + 1;
        // Each push since this one was pulled added a token and at most PushTokens are kept: with fewer pushes since
        // than that, a committed push would still be listed.
        if (generation is null || generation.Value - before < BtSchema.PushTokens)
            throw new IOException($"{Location}: the connection was lost before the push's answer came; the store{(generation is null ? " does not exist" : $" is at generation {generation} and does not list the push")}, so it did not commit (aborted): nothing was written", lost);
        throw new IOException($"{Location}: the connection was lost before the push's answer came, and the store has had {generation.Value - before} pushes since it was pulled (generation {before} -> {generation}), more than the {BtSchema.PushTokens} it keeps track of: whether this push committed cannot be told; reread the store before writing again", lost);
    }

    /// <summary>How long a writer whose push lost its answer keeps trying to reach the server to ask about it.</summary>
    private static readonly TimeSpan AskAfterLossFor = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs <paramref name="ask"/> on a new connection, again every 200 ms while the server cannot be reached (it may be
    /// restarting), until <paramref name="deadline"/>; false when it could not be asked by then (<paramref name="last"/>
    /// is the last failure).
    /// </summary>
    private bool TryAskAfterLoss<TAnswer>(Func<NpgsqlConnection, TAnswer> ask, DateTime deadline, ref Exception last, out TAnswer answer)
    {
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var c = Db.Open();
                answer = ask(c);
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or IOException)
            {
                last = e;
                Thread.Sleep(200);
            }
        }
        answer = default!;
        return false;
    }

    private static string CheckIdentifier(string identifier)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        if (identifier.Length > 1000 || identifier.Any(char.IsControl))
            throw new ArgumentException($"'{identifier}' is not a BT store identifier (at most 1000 characters, no control characters)", nameof(identifier));
        return identifier;
    }

    /// <summary>One stored key: canonical key, place, pickled key, and (unless lazy) the entry's tree; a row being written also has its pickled entry.</summary>
    private sealed class Row(byte[] key, long seq, byte[] pkey, byte[]? entry)
    {
        private object? _keyObject;

        public byte[] Key { get; } = key;
        public long Seq { get; } = seq;
        public byte[] PKey { get; } = pkey;

        /// <summary>The pickled entry, while the row is written.</summary>
        public byte[]? Entry { get; set; } = entry;

        private object? _value;
        private ReadOnlyMemory<byte> _pending;
        private bool _hasPending;

        /// <summary>The entry's tree, once decoded or set (null in lazy mode, and while the pulled bytes wait for their first read).</summary>
        public object? Value
        {
            get => Volatile.Read(ref _value);
            set => Volatile.Write(ref _value, value);
        }

        /// <summary>The row's place in the store's order at the pull (-1 for rows written since).</summary>
        public int Place { get; set; } = -1;

        /// <summary>Keeps the pulled, well-formed entry to be decoded on first read (before the row is published).</summary>
        public void Defer(ReadOnlyMemory<byte> entry)
        {
            _pending = entry;
            _hasPending = true;
        }

        /// <summary>True when the row has a tree or pulled bytes to decode (false in lazy mode).</summary>
        public bool Readable => _hasPending || Volatile.Read(ref _value) is not null;

        /// <summary>
        /// The entry's tree, decoding the pulled bytes on first use. Several threads may read at once: a row decoded by
        /// two at once is decoded twice and one result is kept for both; a value set meanwhile wins.
        /// </summary>
        public object Read(PostgresEntryStore owner)
        {
            if (Volatile.Read(ref _value) is { } v) return v;
            var decoded = owner.Unpickle(_pending, StoreKey.FromPython(KeyObject(owner)));
            return Interlocked.CompareExchange(ref _value, decoded, null) ?? decoded;
        }

        /// <summary>After the write: the bytes are dropped, and a lazy store drops the tree too.</summary>
        public void Written(bool lazy)
        {
            Entry = null;
            if (lazy) Value = null;
        }

        public object KeyObject(PostgresEntryStore owner) => _keyObject ??= owner.UnpickleKey(PKey);

        /// <summary>The key the row is being written under, for messages (null for rows read from the database).</summary>
        public object? WrittenKey { get; init; }
    }

    private sealed class ByteKeyComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteKeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var h = new HashCode();
            h.AddBytes(obj);
            return h.ToHashCode();
        }
    }
}
