using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.EntryStores;

/// <summary>
/// The behaviour every backend's entry store must show under the store base, written only against an entry-store
/// factory (<see cref="Create"/>) and the raw entries the backend holds (<see cref="Entry"/>). A backend runs the
/// whole suite by adding one subclass; the file backends' subclasses are at the end of this file.
/// </summary>
/// <remarks>
/// The tests drive the real entry table through <see cref="RawStore"/>, a store that keeps raw entries as they are,
/// so that what is checked is the store base and the entry store together, not a codec. Entry stores are wrapped in
/// <see cref="RecordingEntryStore"/> where a test proves which calls reach the backend. Hooks whose default works on
/// files (<see cref="WriteGarbage"/>, <see cref="ReadStoredBytes"/>, <see cref="AssertKeptAside"/>,
/// <see cref="AssertNothingStored"/>) are overridden by backends that keep their data elsewhere.
/// </remarks>
public abstract class EntryStoreBehaviourSuite : IDisposable
{
    /// <summary>A short lock timeout for tests that expect a wait to fail.</summary>
    protected const double QuickTimeout = 0.3;

    private static readonly byte[] Garbage = [0xFF, 0xFE, 0x00, 0x13, .. "this is not a store file"u8, 0x00, 0x9C, 0x7F];

    /// <summary>The test's own folder; deleted after the test.</summary>
    protected TempDir Dir { get; } = new();

    /// <summary>A new entry store for the location named <paramref name="name"/> inside the test's folder; the same name gives the same location. Nothing is read yet.</summary>
    protected abstract IEntryStore Create(string name);

    /// <summary>Distinct raw per-key entries this kind of store holds; equal <paramref name="i"/> give equal (but not the same) entries.</summary>
    protected abstract object Entry(int i);

    /// <summary>A raw entry holding the counter value <paramref name="value"/> (for the lost-update test).</summary>
    protected abstract object Counter(long value);

    /// <summary>The counter value held by an entry made by <see cref="Counter"/>.</summary>
    protected abstract long CounterValue(object entry);

    /// <summary>
    /// Edits <paramref name="entry"/> in place, the same way every time it is called on an entry in the same state;
    /// false when this kind of entry is not edited in place (the in-place test then checks only that the handed-out
    /// entry is the store's own).
    /// </summary>
    protected virtual bool EditInPlace(object entry) => false;

    /// <summary>A value the backend cannot hold as an entry (its push must fail with <see cref="ArgumentException"/> and write nothing).</summary>
    protected virtual object UnholdableEntry => new object();

    /// <summary>Asserts that two raw entries are equal, comparing their typed JSON trees.</summary>
    protected virtual void AssertEntryEqual(object expected, object? actual, string what)
    {
        Assert.NotNull(actual);
        TypedJsonAssert.Equal(TypedJson.ToJson(expected), TypedJson.ToJson(actual), what);
    }

    /// <summary>Replaces what is stored at location <paramref name="name"/> with bytes that are no readable store.</summary>
    protected virtual void WriteGarbage(string name, byte[] bytes)
    {
        using var es = Create(name);
        File.WriteAllBytes(es.Location, bytes);
    }

    /// <summary>The stored bytes of location <paramref name="name"/> (null when nothing is stored).</summary>
    protected virtual byte[]? ReadStoredBytes(string name)
    {
        using var es = Create(name);
        return File.Exists(es.Location) ? File.ReadAllBytes(es.Location) : null;
    }

    /// <summary>
    /// Asserts that <see cref="CorruptFilePolicy.MoveAside"/> kept <paramref name="garbage"/> aside for location
    /// <paramref name="name"/>, in one place that the <paramref name="warning"/> names.
    /// </summary>
    protected virtual void AssertKeptAside(string name, byte[] garbage, string warning)
    {
        using var es = Create(name);
        var aside = Assert.Single(Directory.GetFiles(Path.GetDirectoryName(es.Location)!, Path.GetFileName(es.Location) + ".corrupt-*"));
        Assert.Equal(garbage, File.ReadAllBytes(aside));
        Assert.Contains(aside, warning, StringComparison.Ordinal);
    }

    /// <summary>Asserts that nothing at all was stored in the test's folder (or the backend's equivalent).</summary>
    protected virtual void AssertNothingStored() => Assert.Empty(Directory.EnumerateFileSystemEntries(Dir.Path));

    /// <summary>Deletes the test's folder.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes the test's folder; backends with other resources release them too.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Dir.Dispose();
    }

    /// <summary>A store of raw entries over any entry store: the store base with no codec.</summary>
    public sealed class RawStore : StorageBase
    {
        /// <summary>Creates the store and pulls it.</summary>
        public RawStore(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, options) => OpenNow();

        private RawStore(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, options) { }

        /// <summary>Creates the store and pulls it, waiting for its lock without blocking.</summary>
        public static Task<RawStore> OpenAsync(IEntryStore entryStore, StoreOptions? options, CancellationToken ct) =>
            OpenedAsync(new RawStore(entryStore, options, deferred: true), ct);

        /// <summary>The raw entry (not pinned, not counted as changed).</summary>
        public override object GetAsPython(StoreKey key) => TryPeekEntry(key, out var raw) ? raw : throw MissingKey(key);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Writable without locking on every backend (a BT store locks by default); the locking tests ask for locks.</summary>
    private static StoreOptions Writable => StoreOptions.Writable with { DisableLocking = true };

    private static StoreOptions QuickLocked => StoreOptions.WritableLocked with { Timeout = QuickTimeout };

    private RawStore Open(string name, StoreOptions? options = null) => new(Create(name), options);

    /// <summary>Stores entries <c>Entry(i)</c> under keys <c>i</c> at location <paramref name="name"/>.</summary>
    private void Seed(string name, IEnumerable<int> ids)
    {
        using var s = Open(name, Writable);
        foreach (var i in ids) s.SetRaw(i, Entry(i));
        s.Push();
    }

    private static StoreKey[] Keys(params int[] ids) => ids.Select(i => (StoreKey)i).ToArray();

    /// <summary>Asserts what a fresh store and a fresh entry store at <paramref name="name"/> read: these keys in this order, with these entries.</summary>
    private void AssertStored(string name, params (StoreKey Key, object Entry)[] expected)
    {
        using (var s = Open(name))
        {
            Assert.Equal(expected.Select(e => e.Key), s.Keys);
            Assert.Equal(expected.Length, s.Count);
            foreach (var (k, e) in expected) AssertEntryEqual(e, s.GetAsPython(k), $"entry {k} read through a fresh store");
        }
        using var es = Create(name);
        es.Load(StoreOptions.Default);
        Assert.True(es.Exists);
        Assert.Equal(expected.Select(e => e.Key), es.Keys.Select(StoreKey.FromPython));
        Assert.Equal(expected.Length, es.Count);
        foreach (var (k, e) in expected)
        {
            Assert.True(es.TryRead(k, out var raw), $"key {k} is not in the entry store");
            AssertEntryEqual(e, raw, $"entry {k} read through a fresh entry store");
        }
    }

    private void AssertStored(string name, params int[] ids) => AssertStored(name, ids.Select(i => ((StoreKey)i, Entry(i))).ToArray());

    /// <summary>Count, Keys and ContainsKey tell the same story.</summary>
    private static void AssertView(StorageBase s, StoreKey[] expected, params StoreKey[] absent)
    {
        Assert.Equal(expected, s.Keys.ToArray());
        Assert.Equal(expected.Length, s.Count);
        foreach (var k in expected) Assert.True(s.ContainsKey(k), $"ContainsKey({k}) is false but the key is listed");
        foreach (var k in absent) Assert.False(s.ContainsKey(k), $"ContainsKey({k}) is true but the key is not listed");
    }

    private static string LockResourceOf(IEntryStore es)
    {
        using var l = es.AcquireLock(new LockOptions { Timeout = TimeSpan.FromSeconds(QuickTimeout) });
        Assert.True(l.IsHeld);
        return l.Resource;
    }

    // ------------------------------------------------------------------ opening

    [Fact]
    public void Opening_a_missing_store_gives_an_empty_store_and_a_read_only_open_creates_nothing()
    {
        using (var s = Open("missing"))
        {
            Assert.False(s.EntryStore.Exists);
            Assert.Equal(0, s.Count);
            Assert.Empty(s.Keys);
            Assert.False(s.ContainsKey(1));
            Assert.False(s.TryGetRaw(1, out _));
            Assert.Throws<KeyNotFoundException>(() => s.GetRaw(1));
            Assert.Throws<KeyNotFoundException>(() => s.GetAsPython(1));
            Assert.False(s.IsDirty);
            Assert.False(s.HoldsLock);
        }
        AssertNothingStored();

        using var es = Create("missing");
        es.Load(StoreOptions.Default);
        Assert.False(es.Exists);
        Assert.Equal(0, es.Count);
        Assert.Empty(es.Keys);
        Assert.Empty(es.ReadAll());
        Assert.False(es.ContainsKey(1));
        Assert.False(es.TryRead(1, out _));
        AssertNothingStored();
    }

    // ------------------------------------------------------------------ order and round trips

    [Fact]
    public void Set_push_and_reopen_round_trips_the_entries_in_insertion_order()
    {
        StoreKey[] keys = [10, 2, "name", 7, 0, -3];
        using (var s = Open("rt", Writable))
        {
            for (int i = 0; i < keys.Length; i++) s.SetRaw(keys[i], Entry(i));
            Assert.Equal(keys, s.Keys);
            Assert.True(s.IsDirty);
            s.Push();
            Assert.True(s.EntryStore.Exists);
            Assert.Equal(keys, s.Keys);
            for (int i = 0; i < keys.Length; i++) AssertEntryEqual(Entry(i), s.GetAsPython(keys[i]), $"entry {keys[i]} after push");
        }
        AssertStored("rt", keys.Select((k, i) => (k, Entry(i))).ToArray());
    }

    [Fact]
    public void Setting_an_existing_key_keeps_its_position_before_and_after_push()
    {
        using (var s = Open("pos", Writable))
        {
            s.SetRaw(1, Entry(1));
            s.SetRaw(2, Entry(2));
            s.SetRaw(3, Entry(3));
            s.SetRaw(1, Entry(11));
            Assert.Equal(Keys(1, 2, 3), s.Keys);
            AssertEntryEqual(Entry(11), s.GetAsPython(1), "entry 1 set twice");
            s.Push();
        }
        AssertStored("pos", (1, Entry(11)), (2, Entry(2)), (3, Entry(3)));

        using (var s = Open("pos", Writable))
        {
            s.SetRaw(2, Entry(22));
            s.SetRaw(1, Entry(111));
            Assert.Equal(Keys(1, 2, 3), s.Keys);
            s.Push();
            Assert.Equal(Keys(1, 2, 3), s.Keys);
        }
        AssertStored("pos", (1, Entry(111)), (2, Entry(22)), (3, Entry(3)));
    }

    [Fact]
    public void Removing_a_key_and_setting_it_again_moves_it_to_the_end_before_and_after_push()
    {
        using (var s = Open("order", Writable))
        {
            s.SetRaw(1, Entry(1));
            s.SetRaw(2, Entry(2));
            s.SetRaw(3, Entry(3));
            Assert.True(s.Remove(1));
            s.SetRaw(1, Entry(11));
            AssertView(s, Keys(2, 3, 1));
            s.Push();
            AssertView(s, Keys(2, 3, 1));
        }
        AssertStored("order", (2, Entry(2)), (3, Entry(3)), (1, Entry(11)));

        // Now a stored key: removed from the stored entries, then set anew.
        using (var s = Open("order", Writable))
        {
            Assert.True(s.Remove(3));
            s.SetRaw(3, Entry(33));
            AssertView(s, Keys(2, 1, 3));
            AssertEntryEqual(Entry(33), s.GetAsPython(3), "entry 3 set again");
            s.Push();
            AssertView(s, Keys(2, 1, 3));
        }
        AssertStored("order", (2, Entry(2)), (1, Entry(11)), (3, Entry(33)));
    }

    [Fact]
    public void Remove_persists_and_reports_whether_the_key_was_there()
    {
        Seed("rm", [1, 2, 3, 4]);
        using (var s = Open("rm", Writable))
        {
            Assert.True(s.Remove(2));
            Assert.False(s.Remove(2));
            Assert.False(s.Remove(99));
            s.SetRaw(5, Entry(5));
            Assert.True(s.Remove(5));
            AssertView(s, Keys(1, 3, 4), 2, 5, 99);
            Assert.False(s.TryGetRaw(2, out _));
            Assert.Throws<KeyNotFoundException>(() => s.GetAsPython(2));
            s.Push();
            AssertView(s, Keys(1, 3, 4), 2, 5);
        }
        AssertStored("rm", 1, 3, 4);

        using (var s = Open("rm", Writable))
        {
            foreach (var k in Keys(1, 3, 4)) Assert.True(s.Remove(k));
            AssertView(s, [], 1, 3, 4);
            s.Push();
        }
        AssertStored("rm", Array.Empty<int>());
    }

    [Fact]
    public void Count_Keys_and_ContainsKey_agree_before_and_after_push_and_after_pull()
    {
        using (var s = Open("view", Writable))
        {
            AssertView(s, [], 1);
            foreach (var i in new[] { 1, 2, 3, 4, 5 }) s.SetRaw(i, Entry(i));
            AssertView(s, Keys(1, 2, 3, 4, 5), 6);
            s.Push();
            AssertView(s, Keys(1, 2, 3, 4, 5), 6);

            Assert.True(s.Remove(2));
            s.SetRaw(6, Entry(6));
            s.SetRaw(3, Entry(33));
            s.SetRaw(7, Entry(7));
            Assert.True(s.Remove(7));
            AssertView(s, Keys(1, 3, 4, 5, 6), 2, 7);
            s.Push();
            AssertView(s, Keys(1, 3, 4, 5, 6), 2, 7);

            s.Pull();
            AssertView(s, Keys(1, 3, 4, 5, 6), 2, 7);

            // A pull forgets changes that were not pushed.
            Assert.True(s.Remove(1));
            s.SetRaw(8, Entry(8));
            AssertView(s, Keys(3, 4, 5, 6, 8), 1);
            s.Pull();
            AssertView(s, Keys(1, 3, 4, 5, 6), 2, 7, 8);
            Assert.False(s.IsDirty);
        }
        using (var fresh = Open("view"))
            AssertView(fresh, Keys(1, 3, 4, 5, 6), 2, 7, 8);
        AssertStored("view", (1, Entry(1)), (3, Entry(33)), (4, Entry(4)), (5, Entry(5)), (6, Entry(6)));
    }

    // ------------------------------------------------------------------ laziness and changed-keys pushes

    [Fact]
    public void Reads_are_lazy_listing_reads_no_entry_and_one_read_reads_one_entry()
    {
        Seed("lazy", Enumerable.Range(0, 10));
        var rec = new RecordingEntryStore(Create("lazy"));
        using var s = new RawStore(rec, Writable);
        Assert.Equal(1, rec.Loads);
        Assert.Empty(rec.TryReads);
        Assert.Equal(0, rec.ReadAlls);

        Assert.Equal(10, s.Count);
        Assert.Equal(Keys(Enumerable.Range(0, 10).ToArray()), s.Keys.ToArray());
        Assert.True(s.ContainsKey(3));
        Assert.False(s.ContainsKey(42));
        Assert.Empty(rec.TryReads);

        AssertEntryEqual(Entry(4), s.GetAsPython(4), "entry 4");
        Assert.Equal(Keys(4), rec.TryReads);

        // Setting and removing stored keys reads none of them either.
        s.SetRaw(5, Entry(55));
        Assert.True(s.Remove(6));
        Assert.Equal(9, s.Count);
        Assert.Equal(Keys(4), rec.TryReads);
        Assert.Equal(0, rec.ReadAlls);
    }

    [Fact]
    public void A_changed_keys_push_writes_only_the_changed_and_removed_keys()
    {
        var ids = Enumerable.Range(0, 100).ToArray();
        Seed("hundred", ids);
        var rec = new RecordingEntryStore(Create("hundred"));
        using (var s = new RawStore(rec, Writable))
        {
            rec.Reset();
            s.SetRaw(5, Entry(1005));
            s.SetRaw(100, Entry(100));
            Assert.True(s.Remove(7));
            s.Push();

            var call = Assert.Single(rec.WriteChangesCalls);
            Assert.Equal(Keys(7), call.Removed);
            Assert.Equal(Keys(5, 100), call.Changed);
            Assert.Empty(rec.ReplaceAllCalls);
            Assert.Empty(rec.TryReads);
            Assert.Equal(0, rec.ReadAlls);
        }
        var expected = ids.Where(i => i != 7).Append(100).Select(i => ((StoreKey)i, Entry(i == 5 ? 1005 : i))).ToArray();
        AssertStored("hundred", expected);
    }

    [Fact]
    public void Values_handed_out_for_editing_count_as_changed()
    {
        Seed("handed", [1, 2, 3]);
        var rec = new RecordingEntryStore(Create("handed"));
        using (var s = new RawStore(rec, Writable))
        {
            Assert.False(s.IsDirty);
            Assert.True(s.TryGetRaw(1, out var one));
            Assert.True(s.IsDirty);
            var two = s.GetRaw(2);
            Assert.Same(one, s.GetRaw(1));
            Assert.Same(two, s.GetRaw(2));
            // Peeking at an entry does not hand it out.
            AssertEntryEqual(Entry(3), s.GetAsPython(3), "entry 3");
            s.Push();

            var call = Assert.Single(rec.WriteChangesCalls);
            Assert.Empty(call.Removed);
            Assert.Equal(Keys(1, 2), call.Changed);
            Assert.Empty(rec.ReplaceAllCalls);
        }
        AssertStored("handed", 1, 2, 3);
    }

    [Fact]
    public void An_entry_edited_in_place_after_it_was_handed_out_survives_push_and_reopen_and_a_second_edit_after_push()
    {
        Seed("edit", [1, 2]);
        var expected = Entry(1);
        bool editable = EditInPlace(expected);
        var rec = new RecordingEntryStore(Create("edit"));
        using (var s = new RawStore(rec, Writable))
        {
            var e = s.GetRaw(1);
            Assert.Same(e, s.GetRaw(1));
            if (!editable)
            {
                AssertEntryEqual(Entry(1), e, "entry 1 handed out");
                return;
            }
            Assert.True(EditInPlace(e));
            Assert.Same(e, s.GetRaw(1));
            AssertEntryEqual(expected, s.GetAsPython(1), "entry 1 after the edit");
            s.Push();
            // The push names the entry as changed: a backend that writes only changed keys gets the edit too.
            Assert.Contains((StoreKey)1, Assert.Single(rec.WriteChangesCalls).Changed);

            // An unlocked writable store may push again; the holder of the entry edits it once more.
            Assert.True(EditInPlace(e));
            Assert.True(EditInPlace(expected));
            s.Push();
            Assert.Equal(2, rec.WriteChangesCalls.Count);
            Assert.Contains((StoreKey)1, rec.WriteChangesCalls[1].Changed);
        }
        AssertStored("edit", (1, expected), (2, Entry(2)));
    }

    [Fact]
    public void An_entry_the_backend_cannot_hold_fails_the_push_and_writes_nothing()
    {
        Seed("bad", [1, 2]);
        var before = ReadStoredBytes("bad");
        using (var s = Open("bad", Writable))
        {
            s.SetRaw(3, Entry(3));
            s.SetRaw(4, UnholdableEntry);
            Assert.ThrowsAny<ArgumentException>(() => s.Push());
            Assert.Equal(before, ReadStoredBytes("bad"));

            // Nothing was forgotten: without the bad entry the other change is pushed.
            Assert.True(s.Remove(4));
            s.Push();
        }
        AssertStored("bad", 1, 2, 3);
    }

    [Fact]
    public void A_read_only_store_refuses_to_push_and_writes_nothing()
    {
        Seed("ro", [1]);
        var before = ReadStoredBytes("ro");
        using (var s = Open("ro"))
        {
            s.SetRaw(2, Entry(2));
            Assert.Throws<InvalidOperationException>(() => s.Push());
        }
        Assert.Equal(before, ReadStoredBytes("ro"));
        AssertStored("ro", 1);
    }

    // ------------------------------------------------------------------ locking

    [Fact]
    public void A_writable_locked_store_holds_its_lock_a_second_times_out_naming_it_and_dispose_releases_it()
    {
        var first = Open("locked", StoreOptions.WritableLocked);
        StorageLockTimeoutException e;
        var sw = Stopwatch.StartNew();
        try
        {
            Assert.True(first.HoldsLock);
            first.SetRaw(1, Entry(1));
            e = Assert.Throws<StorageLockTimeoutException>(() => Open("locked", QuickLocked));
            sw.Stop();
            Assert.True(first.HoldsLock);
        }
        finally
        {
            first.Dispose();
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"the second open took {sw.Elapsed} to time out after {QuickTimeout} s");
        Assert.True(e.Waited >= TimeSpan.FromSeconds(QuickTimeout * 0.8), $"gave up after {e.Waited}, before the timeout of {QuickTimeout} s");
        var resource = LockResourceOf(Create("locked"));
        Assert.Equal(resource, e.Resource);
        Assert.Contains(resource, e.Message, StringComparison.Ordinal);

        // Disposing released the lock without writing the unpushed entry.
        using var third = Open("locked", QuickLocked);
        Assert.True(third.HoldsLock);
        Assert.Equal(0, third.Count);
    }

    [Fact]
    public async Task Waiting_for_a_held_lock_in_OpenAsync_and_PullAsync_is_cancelled_by_the_token()
    {
        var patient = StoreOptions.WritableLocked with { Timeout = 60 };
        using var other = Open("async", StoreOptions.WritableLocked);
        other.SetRaw(1, Entry(1));
        other.Push();
        Assert.False(other.HoldsLock);

        var holder = Open("async", StoreOptions.WritableLocked);
        try
        {
            using (var cts = new CancellationTokenSource())
            {
                var opening = RawStore.OpenAsync(Create("async"), patient, cts.Token);
                await Task.Delay(100);
                Assert.False(opening.IsCompleted, "OpenAsync did not wait for the held lock");
                await cts.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => opening.WaitAsync(TimeSpan.FromSeconds(10)));
            }
            using (var cts = new CancellationTokenSource())
            {
                var pulling = other.PullAsync(cts.Token);
                await Task.Delay(100);
                Assert.False(pulling.IsCompleted, "PullAsync did not wait for the held lock");
                await cts.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pulling.WaitAsync(TimeSpan.FromSeconds(10)));
                Assert.False(other.HoldsLock);
            }
            Assert.True(holder.HoldsLock);
        }
        finally
        {
            holder.Dispose();
        }

        // The lock is usable afterwards, by a new store and by the one whose pull was cancelled.
        using (var again = await RawStore.OpenAsync(Create("async"), QuickLocked, CancellationToken.None))
        {
            Assert.True(again.HoldsLock);
            Assert.Equal(Keys(1), again.Keys);
        }
        await other.PullAsync();
        Assert.True(other.HoldsLock);
        Assert.Equal(Keys(1), other.Keys);
    }

    [Fact]
    public async Task Locked_read_modify_write_cycles_of_two_threads_lose_no_update()
    {
        const int perThread = 50;
        var options = StoreOptions.WritableLocked with { Timeout = 60, Durable = false };
        using (var init = Open("counter", options))
        {
            init.SetRaw(0, Counter(0));
            init.SetRaw(1, Entry(1));
            init.Push();
        }
        void Work()
        {
            for (int n = 0; n < perThread; n++)
            {
                using var s = Open("counter", options);
                long v = CounterValue(s.GetAsPython(0));
                s.SetRaw(0, Counter(v + 1));
                s.Push();
            }
        }
        await Task.WhenAll(Task.Run(Work), Task.Run(Work));
        using var r = Open("counter");
        Assert.Equal(2 * perThread, CounterValue(r.GetAsPython(0)));
        AssertEntryEqual(Entry(1), r.GetAsPython(1), "the entry no thread touched");
    }

    [Fact]
    public void A_second_push_of_a_locked_store_without_pull_is_refused_and_writes_nothing()
    {
        var rec = new RecordingEntryStore(Create("twice"));
        using (var s = new RawStore(rec, StoreOptions.WritableLocked))
        {
            s.SetRaw(1, Entry(1));
            s.Push();
            Assert.False(s.HoldsLock);
            var after = ReadStoredBytes("twice");
            s.SetRaw(2, Entry(2));
            var e = Assert.Throws<InvalidOperationException>(() => s.Push());
            Assert.Contains("Pull", e.Message, StringComparison.Ordinal);
            Assert.Single(rec.WriteChangesCalls);
            Assert.Empty(rec.ReplaceAllCalls);
            Assert.Equal(after, ReadStoredBytes("twice"));
            AssertStored("twice", 1);

            // After a pull the store is locked again and pushes.
            s.Pull();
            Assert.True(s.HoldsLock);
            Assert.Equal(Keys(1), s.Keys);
            s.SetRaw(3, Entry(3));
            s.Push();
        }
        AssertStored("twice", 1, 3);
    }

    // ------------------------------------------------------------------ corrupt data

    [Fact]
    public void Corrupt_data_makes_open_throw_and_is_left_untouched()
    {
        WriteGarbage("corrupt", Garbage);
        var ro = Assert.Throws<InvalidDataException>(() => Open("corrupt"));
        var rw = Assert.Throws<InvalidDataException>(() => Open("corrupt", StoreOptions.WritableLocked));
        using (var es = Create("corrupt"))
        {
            Assert.Contains(es.Location, ro.Message, StringComparison.Ordinal);
            Assert.Contains(es.Location, rw.Message, StringComparison.Ordinal);
            // The failed open released the lock it took.
            Assert.NotNull(LockResourceOf(es));
        }
        Assert.Equal(Garbage, ReadStoredBytes("corrupt"));
    }

    [Fact]
    public void Corrupt_data_with_MoveAside_is_moved_aside_with_a_warning_and_the_store_starts_empty()
    {
        WriteGarbage("aside", Garbage);
        var log = new ListLogger();
        using (var s = Open("aside", StoreOptions.WritableLocked with { OnCorruptFile = CorruptFilePolicy.MoveAside, Logger = log }))
        {
            Assert.Equal(0, s.Count);
            Assert.Empty(s.Keys);
            var warning = Assert.Single(log.Warnings);
            Assert.Contains(s.Location, warning, StringComparison.Ordinal);
            AssertKeptAside("aside", Garbage, warning);
            s.SetRaw(1, Entry(1));
            s.Push();
        }
        AssertStored("aside", 1);
    }

    // ------------------------------------------------------------------ side data

    [Fact]
    public void The_voxel_cache_side_store_holds_arrays_that_survive_reopening_through_the_parent()
    {
        var cached = NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using (var parent = Create("parent"))
        {
            var side = parent.OpenSideStore(IEntryStore.VoxelCacheSideStore);
            Assert.Equal(EntryStoreKind.Npz, side.Kind);
            Assert.NotEqual(parent.Location, side.Location);
            using var s = new RawStore(side, Writable);
            s.SetRaw(7, cached);
            s.Push();
        }
        using (var parent = Create("parent"))
        using (var side = parent.OpenSideStore(IEntryStore.VoxelCacheSideStore))
        {
            side.Load(StoreOptions.Default);
            Assert.True(side.Exists);
            Assert.Equal(Keys(7), side.Keys.Select(StoreKey.FromPython));
            Assert.True(side.TryRead(7, out var raw));
            AssertEntryEqual(cached, raw, "the cached array");

            using var otherSide = parent.OpenSideStore("other_data");
            otherSide.Load(StoreOptions.Default);
            Assert.NotEqual(side.Location, otherSide.Location);
            Assert.Equal(0, otherSide.Count);
        }
        // The parent's own entries are not touched by its side data.
        using var p = Open("parent");
        Assert.Equal(0, p.Count);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("x.npz")]
    [InlineData("")]
    public void A_side_store_name_that_is_no_plain_identifier_is_refused(string name)
    {
        using var parent = Create("parent");
        Assert.ThrowsAny<ArgumentException>(() => parent.OpenSideStore(name));
        AssertNothingStored();
    }

    // ------------------------------------------------------------------ other locations

    [Fact]
    public void Pull_from_another_location_copies_all_entries_and_the_next_push_replaces_everything_stored()
    {
        Seed("source", [1, 2, 3, 4, 5]);
        Seed("dest", [10, 11, 12]);
        string source;
        using (var es = Create("source")) source = es.Location;
        var rec = new RecordingEntryStore(Create("dest"));
        using (var s = new RawStore(rec, Writable))
        {
            s.Pull(source);
            AssertView(s, Keys(1, 2, 3, 4, 5), 10, 11, 12);
            foreach (var i in new[] { 1, 2, 3, 4, 5 }) AssertEntryEqual(Entry(i), s.GetAsPython(i), $"entry {i} pulled from {source}");
            Assert.True(s.IsDirty);
            s.Push();
            Assert.Equal([5], rec.ReplaceAllCalls);
            Assert.Empty(rec.WriteChangesCalls);
        }
        AssertStored("dest", 1, 2, 3, 4, 5);
        AssertStored("source", 1, 2, 3, 4, 5);
    }

    [Fact]
    public void Push_to_another_location_writes_all_entries_there_and_leaves_the_own_location_alone()
    {
        Seed("own", [1, 2, 3]);
        Seed("elsewhere", [99]);
        string dest;
        using (var es = Create("elsewhere")) dest = es.Location;
        using (var s = Open("own", Writable))
        {
            s.SetRaw(4, Entry(4));
            Assert.True(s.Remove(2));
            s.Push(dest);
            AssertStored("elsewhere", 1, 3, 4);
            AssertStored("own", 1, 2, 3);
            // The own location still has the changes to come.
            Assert.True(s.IsDirty);
            s.Push();
        }
        AssertStored("own", 1, 3, 4);
    }

    // ------------------------------------------------------------------ the entry store directly

    [Fact]
    public void ReplaceAll_through_the_entry_store_replaces_every_entry_and_reads_reflect_it_at_once()
    {
        using (var es = Create("replace"))
        {
            es.Load(StoreOptions.Default);
            es.ReplaceAll([KeyValuePair.Create<object, object>(3L, Entry(3)), KeyValuePair.Create<object, object>(1L, Entry(1)), KeyValuePair.Create<object, object>("s", Entry(2))], StoreOptions.Writable);
            Assert.True(es.Exists);
            Assert.Equal(3, es.Count);
            Assert.Equal([(StoreKey)3, 1, "s"], es.Keys.Select(StoreKey.FromPython));
            Assert.True(es.ContainsKey("s"));
            Assert.True(es.TryRead(1, out var one));
            AssertEntryEqual(Entry(1), one, "entry 1 after ReplaceAll");
            Assert.Equal([(StoreKey)3, 1, "s"], es.ReadAll().Select(kv => StoreKey.FromPython(kv.Key)));
        }
        AssertStored("replace", (3, Entry(3)), (1, Entry(1)), ("s", Entry(2)));

        using (var es = Create("replace"))
        {
            es.Load(StoreOptions.Default);
            es.ReplaceAll([KeyValuePair.Create<object, object>(5L, Entry(5))], StoreOptions.Writable);
            Assert.Equal(Keys(5), es.Keys.Select(StoreKey.FromPython));
            Assert.False(es.ContainsKey(3));
            Assert.False(es.TryRead(1, out _));
        }
        AssertStored("replace", 5);

        using (var es = Create("replace"))
        {
            es.Load(StoreOptions.Default);
            es.ReplaceAll([], StoreOptions.Writable);
            Assert.Equal(0, es.Count);
        }
        AssertStored("replace", Array.Empty<int>());
    }

    [Fact]
    public void WriteChanges_through_the_entry_store_removes_first_then_sets_keeping_stored_keys_in_place()
    {
        Seed("changes", [1, 2, 3, 4]);
        using (var es = Create("changes"))
        {
            es.Load(StoreOptions.Default);
            // 2 is removed; 1 is removed and set again (so it moves to the end); 3 changes in place; 5 is new.
            es.WriteChanges(
                [2L, 1L],
                [KeyValuePair.Create<object, object>(3L, Entry(33)), KeyValuePair.Create<object, object>(5L, Entry(5)), KeyValuePair.Create<object, object>(1L, Entry(11))],
                StoreOptions.Writable);
            Assert.Equal(Keys(3, 4, 5, 1), es.Keys.Select(StoreKey.FromPython));
            Assert.Equal(4, es.Count);
            Assert.False(es.ContainsKey(2));
            Assert.True(es.TryRead(3, out var three));
            AssertEntryEqual(Entry(33), three, "entry 3 after WriteChanges");
        }
        AssertStored("changes", (3, Entry(33)), (4, Entry(4)), (5, Entry(5)), (1, Entry(11)));
    }

    // ------------------------------------------------------------------ disposing

    [Fact]
    public void Disposing_a_writable_store_with_unpushed_edits_logs_one_warning_and_drops_them()
    {
        Seed("unpushed", [1]);
        var log = new ListLogger();
        string location;
        using (var s = Open("unpushed", Writable with { Logger = log }))
        {
            location = s.Location;
            s.SetRaw(2, Entry(2));
            Assert.True(s.Remove(1));
            Assert.Empty(log.Entries);
        }
        var (level, message) = Assert.Single(log.Entries);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, level);
        Assert.Contains(location, message, StringComparison.Ordinal);
        AssertStored("unpushed", 1);
    }

    [Fact]
    public void Disposing_a_pushed_an_unchanged_or_a_read_only_store_logs_nothing()
    {
        Seed("quiet", [1]);
        var log = new ListLogger();
        using (var pushed = Open("quiet", Writable with { Logger = log }))
        {
            pushed.SetRaw(2, Entry(2));
            pushed.Push();
        }
        using (var pushedLocked = Open("quiet", StoreOptions.WritableLocked with { Logger = log }))
        {
            pushedLocked.SetRaw(3, Entry(3));
            pushedLocked.Push();
        }
        using (var readOnly = Open("quiet", StoreOptions.Default with { Logger = log }))
        {
            readOnly.SetRaw(4, Entry(4));
            Assert.True(readOnly.Remove(1));
        }
        using (var onlyRead = Open("quiet", Writable with { Logger = log }))
        {
            Assert.True(onlyRead.TryGetRaw(1, out _));
            AssertEntryEqual(Entry(2), onlyRead.GetAsPython(2), "entry 2");
        }
        Assert.Empty(log.Entries);
        AssertStored("quiet", 1, 2, 3);
    }
}

/// <summary>The behaviour suite over backends of Python trees per key (pickle files, BT rows): the entries and edits.</summary>
public abstract class PickleTreeBehaviourSuite : EntryStoreBehaviourSuite
{
    /// <summary>A Python tree as SyConn keeps it per key: a dict with an int, an array and a list.</summary>
    protected override object Entry(int i) => new PyDict
    {
        ["id"] = (long)i,
        ["arr"] = NdArray.Create(new long[] { i, -i, (long)i * i }),
        ["list"] = new PyList { (long)i, "item " + i, 0.5 * i },
    };

    /// <inheritdoc/>
    protected override object Counter(long value) => new PyDict { ["n"] = value };

    /// <inheritdoc/>
    protected override long CounterValue(object entry) => (long)((PyDict)entry)["n"];

    /// <summary>Appends to the entry's list and counts the edits in a new key.</summary>
    protected override bool EditInPlace(object entry)
    {
        var d = (PyDict)entry;
        long edits = d.TryGetValue("edits", out var v) ? (long)v + 1 : 1;
        d["edits"] = edits;
        ((PyList)d["list"]).Add("edit " + edits);
        return true;
    }
}

/// <summary>The behaviour suite over SyConn's <c>.pkl</c> store files (<see cref="PickleFileEntryStore"/>).</summary>
public sealed class PickleEntryStoreBehaviourTests : PickleTreeBehaviourSuite
{
    /// <inheritdoc/>
    protected override IEntryStore Create(string name) => new PickleFileEntryStore(Dir.File(name + ".pkl"));

    [Fact]
    public void Keys_stored_as_numpy_integer_scalars_are_the_same_keys_as_ints()
    {
        // SyConn often writes numpy integers as keys; the file keeps them as they were written.
        var path = Dir.File("npkeys.pkl");
        File.WriteAllBytes(path, Formats.Pickle.Pickle.Dump(new PyDict
        {
            [NpScalar.UInt64(1)] = Entry(1),
            [NpScalar.UInt64(2)] = Entry(2),
            [NpScalar.Int64(3)] = Entry(3),
        }));
        using (var s = new RawStore(Create("npkeys"), StoreOptions.Writable))
        {
            Assert.Equal([(StoreKey)1, 2, 3], s.Keys);
            Assert.True(s.ContainsKey(2));
            Assert.True(s.Remove(2));
            s.SetRaw(1, Entry(11));
            s.SetRaw(2, Entry(22));
            Assert.Equal([(StoreKey)1, 3, 2], s.Keys);
            Assert.Equal(3, s.Count);
            AssertEntryEqual(Entry(11), s.GetAsPython(1), "entry 1 set by int");
            s.Push();
        }
        using var r = new RawStore(Create("npkeys"));
        Assert.Equal([(StoreKey)1, 3, 2], r.Keys);
        AssertEntryEqual(Entry(11), r.GetAsPython(1), "entry 1");
        AssertEntryEqual(Entry(3), r.GetAsPython(3), "entry 3");
        AssertEntryEqual(Entry(22), r.GetAsPython(2), "entry 2");
    }
}

/// <summary>The behaviour suite over npz archives (<see cref="NpzEntryStore"/>).</summary>
public sealed class NpzEntryStoreBehaviourTests : EntryStoreBehaviourSuite
{
    /// <inheritdoc/>
    protected override IEntryStore Create(string name) => new NpzEntryStore(Dir.File(name + ".npz"));

    /// <summary>An array per key, alternating dtype and shape.</summary>
    protected override object Entry(int i) => i % 2 == 0
        ? NdArray.Create(new long[] { i, -i, (long)i * i })
        : NdArray.Create(new float[] { i, 0.5f * i, -i, 1 }, 2, 2);

    /// <inheritdoc/>
    protected override object Counter(long value) => NdArray.Create(new[] { value });

    /// <inheritdoc/>
    protected override long CounterValue(object entry) => ((NdArray)entry).ToArray<long>()[0];

    /// <summary>An npz entry cannot be a dict.</summary>
    protected override object UnholdableEntry => new PyDict { ["a"] = 1L };

    [Fact]
    public void A_str_key_that_spells_a_stored_int_key_gives_one_consistent_view()
    {
        // Member names are str(key), so "5" and 5 name one member. Whatever the store makes of "5", its
        // views must agree with each other before the push as they do after it.
        using (var s = new RawStore(Create("alias"), StoreOptions.Writable))
        {
            s.SetRaw(5, Entry(5));
            s.SetRaw(6, Entry(6));
            s.Push();
        }
        using (var s = new RawStore(Create("alias"), StoreOptions.Writable))
        {
            bool removed = s.Remove("5");
            var keys = s.Keys.ToArray();
            Assert.True(keys.Length == s.Count, $"Remove(\"5\") returned {removed}; then Count is {s.Count} but Keys lists [{string.Join(", ", keys)}]");
            Assert.Equal(keys.Contains(5), s.ContainsKey(5));
            Assert.Equal(keys.Contains("5"), s.ContainsKey("5"));
            s.Push();
            var after = s.Keys.ToArray();
            Assert.Equal(after.Length, s.Count);
            Assert.Equal(keys, after);
        }
    }

    [Fact]
    public void Pushing_a_str_key_that_spells_an_int_is_refused_and_writes_nothing()
    {
        using (var s = new RawStore(Create("alias"), StoreOptions.Writable))
        {
            s.SetRaw(5, Entry(5));
            s.Push();
        }
        var before = ReadStoredBytes("alias");
        using (var s = new RawStore(Create("alias"), StoreOptions.Writable))
        {
            // Its member "5" would be read back as the int 5, another key: the views before and after a push would differ.
            s.SetRaw("5", Entry(55));
            Assert.Equal(new StoreKey[] { 5, "5" }, s.Keys.ToArray());
            var e = Assert.Throws<ArgumentException>(() => s.Push());
            Assert.Contains("'5'", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(before, ReadStoredBytes("alias"));
        using var typed = new SyConn.Backend.Stores.VoxelStorageLazyLoading(Create("alias"));
        Assert.Throws<ArgumentException>(() => typed["5"] = NdArray.Create(new[] { 1 }));
        Assert.False(typed.ContainsKey("5"));
        Assert.True(typed.ContainsKey(5));
    }

    /// <summary>Changes the array's first byte in place.</summary>
    protected override bool EditInPlace(object entry)
    {
        var span = ((NdArray)entry).Data.Span;
        span[0] = unchecked((byte)(span[0] + 1));
        return true;
    }
}
