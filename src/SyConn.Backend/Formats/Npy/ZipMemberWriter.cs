using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.ExceptionServices;
using System.Text;

namespace SyConn.Backend.Formats.Npy;

/// <summary>Fills <paramref name="destination"/> (exactly the member's length) with a member's uncompressed bytes.</summary>
internal delegate void MemberFiller(Span<byte> destination);

/// <summary>
/// Writes a zip archive member by member in the layout Python's <c>zipfile</c> (and so numpy's
/// <c>savez</c>/<c>savez_compressed</c>) writes — local headers without data descriptors, a central directory,
/// ZIP64 records only when sizes, offsets or the member count need them — deflating members on all cores.
/// </summary>
/// <remarks>
/// <para>Pipeline: <see cref="Add"/> queues a member; thread-pool workers (at most one per core, each with its
/// own <see cref="MemberDeflater"/> and buffers) produce, checksum and deflate queued members in any order,
/// each into its finished local record (header + data); the calling thread writes finished records strictly
/// in the order added, while the workers go on. Memory is bounded: at most <c>16 x workers</c> members and
/// 64 MiB of uncompressed member bytes are queued or finished but unwritten (at least one member); beyond that
/// <see cref="Add"/> waits for (and helps with) the oldest member. The bytes written depend only on the members,
/// the level and the timestamp, never on thread timing.</para>
/// <para>A member whose filler throws fails the archive: the exception is rethrown by the <see cref="Add"/> or
/// <see cref="Finish"/> that reaches it, and nothing more is written (so does an exception of the stream). Not thread-safe: one caller thread. The
/// stream need not be seekable.</para>
/// </remarks>
internal sealed class ZipMemberWriter : IDisposable
{
    private const uint Max32 = 0xFFFFFFFF;
    private const long MaxPendingBytes = 64L << 20;

    private readonly Stream _out;
    private readonly bool _leaveOpen;
    private readonly CompressionLevel _level;
    private readonly DeflateEngine _engine;
    private readonly bool _deflate;
    private readonly List<CentralEntry> _central = [];
    private readonly ushort _dosTime, _dosDate;
    private readonly int _workers;
    private long _offset;
    private bool _finished, _faulted, _disposed;

    // Members added but not yet written, in order (a ring); only the caller thread touches it.
    private readonly Member[] _pending;
    private int _pendingHead, _pendingCount;
    private long _pendingBytes;
    // Members not yet taken by a worker, in order.
    private readonly ConcurrentQueue<Member> _todo = new();
    private int _active;           // worker loops queued or running
    private int _running;          // worker loops running
    private volatile bool _abandon; // skip the remaining work (failure or disposal)
    private readonly object _gate = new(); // Monitor: workers pulse the waiting caller
    private Member? _waitFor;      // the member the caller sleeps on (under _gate)
    private readonly ConcurrentBag<WorkerState> _states = [];
    private readonly List<WorkerState> _allStates = [];

    private readonly record struct CentralEntry(byte[] Name, uint Crc, long Compressed, long Uncompressed, long Offset);

    private sealed class Member(byte[] name, int length, MemberFiller fill)
    {
        public readonly byte[] Name = name;
        public readonly int Length = length;
        public MemberFiller? Fill = fill;
        public byte[]? Record;
        public uint Crc;
        public long Compressed;
        public ExceptionDispatchInfo? Error;
        public volatile bool Done;
    }

    /// <summary>A worker's deflater and input buffer, reused from member to member.</summary>
    private sealed class WorkerState(MemberDeflater? deflater) : IDisposable
    {
        public readonly MemberDeflater? Deflater = deflater;
        public byte[] Input = [];

        public void Dispose() => Deflater?.Dispose();
    }

    /// <summary>Starts an archive.</summary>
    /// <param name="output">Receives the archive.</param>
    /// <param name="deflate">Deflate members (method 8); false stores them (method 0).</param>
    /// <param name="level">Deflate level (see <see cref="MemberDeflater"/> for what <see cref="CompressionLevel.Optimal"/> means).</param>
    /// <param name="leaveOpen">Keep <paramref name="output"/> open on dispose.</param>
    /// <param name="timestamp">Members' modification time (local time, 2-second resolution); default now.</param>
    /// <param name="engine">Deflate implementation.</param>
    /// <param name="maxParallelism">Worker threads; 0 = one per core.</param>
    public ZipMemberWriter(Stream output, bool deflate, CompressionLevel level, bool leaveOpen, DateTime? timestamp = null,
        DeflateEngine engine = DeflateEngine.Auto, int maxParallelism = 0)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(maxParallelism);
        _out = output;
        _deflate = deflate;
        _level = deflate ? level : CompressionLevel.NoCompression;
        _engine = engine;
        if (deflate) MemberDeflater.UsesLibDeflate(_level, engine); // fail now if libdeflate was demanded and is missing
        _leaveOpen = leaveOpen;
        _workers = maxParallelism == 0 ? Environment.ProcessorCount : Math.Min(maxParallelism, Environment.ProcessorCount);
        _pending = new Member[Math.Max(4, 16 * _workers)];
        var t = timestamp ?? DateTime.Now;
        int year = Math.Clamp(t.Year, 1980, 2107);
        _dosTime = (ushort)((t.Hour << 11) | (t.Minute << 5) | (t.Second / 2));
        _dosDate = (ushort)(((year - 1980) << 9) | (t.Month << 5) | t.Day);
    }

    /// <summary>Queues a member of <paramref name="length"/> uncompressed bytes; <paramref name="fill"/> is called
    /// once, on some thread, before <see cref="Finish"/> returns.</summary>
    /// <exception cref="InvalidOperationException">The archive is finished or failed.</exception>
    public void Add(string name, int length, MemberFiller fill)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentNullException.ThrowIfNull(fill);
        ThrowIfClosed();
        var m = new Member(Encoding.UTF8.GetBytes(name), length, fill);
        try
        {
            while (_pendingCount == _pending.Length || (_pendingCount > 0 && _pendingBytes + length > MaxPendingBytes))
                MakeRoom();
            _pending[(_pendingHead + _pendingCount++) % _pending.Length] = m;
            _pendingBytes += length;
            _todo.Enqueue(m);
            StartWorker();
            WriteFinished();
        }
        catch
        {
            Fail();
            throw;
        }
    }

    /// <summary>After any failure past argument checks (a member, the stream): write nothing more, stop the workers.</summary>
    private void Fail()
    {
        _faulted = true;
        _abandon = true;
    }

    private void ThrowIfClosed()
    {
        if (_faulted) throw new InvalidOperationException("the archive failed: a member or the stream could not be written");
        if (_finished) throw new InvalidOperationException("the archive is finished");
    }

    // ---------------------------------------------------------------- workers

    private void StartWorker()
    {
        if (Interlocked.Increment(ref _active) <= _workers)
            ThreadPool.UnsafeQueueUserWorkItem(static w => w.WorkerLoop(), this, preferLocal: false);
        else
            Interlocked.Decrement(ref _active);
    }

    private void WorkerLoop()
    {
        try
        {
            if (_abandon) return;
            Interlocked.Increment(ref _running);
            WorkerState state;
            try
            {
                state = TakeState();
            }
            catch (Exception)
            {
                Interlocked.Decrement(ref _running);
                return; // the queued members stay for the caller thread, which then meets the error itself
            }
            try
            {
                while (_todo.TryDequeue(out var m)) Process(m, state);
            }
            finally
            {
                _states.Add(state);
                Interlocked.Decrement(ref _running);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
        // A member queued after the last TryDequeue but while this loop still counted as running has no worker yet.
        if (!_todo.IsEmpty && !_abandon) StartWorker();
    }

    private WorkerState TakeState()
    {
        if (_states.TryTake(out var s)) return s;
        MemberDeflater? d = null;
        if (_deflate)
        {
            try { d = MemberDeflater.Create(_level, _engine); }
            catch (OutOfMemoryException) { d = MemberDeflater.Create(_level, DeflateEngine.Managed); }
        }
        s = new WorkerState(d);
        lock (_allStates) _allStates.Add(s);
        return s;
    }

    /// <summary>Produces, checksums and deflates <paramref name="m"/> into its local record; never throws.</summary>
    private void Process(Member m, WorkerState state)
    {
        try
        {
            if (_abandon) return;
            var fill = m.Fill!;
            m.Fill = null; // release the member's data as soon as it is read
            if (!_deflate)
            {
                int h = LocalHeaderLength(m.Name, m.Length, m.Length);
                var record = GC.AllocateUninitializedArray<byte>(checked(h + m.Length));
                var raw = record.AsSpan(h);
                fill(raw);
                m.Crc = Crc32.HashToUInt32(raw);
                WriteLocalHeader(record, m.Name, m.Crc, m.Length, m.Length, method: 0);
                m.Compressed = m.Length;
                m.Record = record;
            }
            else
            {
                if (state.Input.Length < m.Length) state.Input = GC.AllocateUninitializedArray<byte>(m.Length);
                var raw = state.Input.AsSpan(0, m.Length);
                fill(raw);
                m.Crc = Crc32.HashToUInt32(raw);
                var payload = state.Deflater!.Compress(raw);
                int h = LocalHeaderLength(m.Name, m.Length, payload.Length);
                var record = GC.AllocateUninitializedArray<byte>(checked(h + payload.Length));
                WriteLocalHeader(record, m.Name, m.Crc, payload.Length, m.Length, method: 8);
                payload.CopyTo(record.AsSpan(h));
                m.Compressed = payload.Length;
                m.Record = record;
                if (state.Input.Length > KeepInputBytes) state.Input = [];
            }
        }
        catch (Exception e)
        {
            m.Error = ExceptionDispatchInfo.Capture(e);
        }
        finally
        {
            lock (_gate)
            {
                m.Done = true;
                if (_waitFor == m) Monitor.Pulse(_gate);
            }
        }
    }

    private const int KeepInputBytes = 16 << 20;

    // ---------------------------------------------------------------- writing, in order

    private Member PendingAt(int i) => _pending[(_pendingHead + i) % _pending.Length];

    /// <summary>
    /// Frees room in a full window: waits for the member a quarter of the way into it (workers take members in
    /// order, so the ones before it are mostly finished too), then writes every finished member at the head —
    /// one wake-up of the caller per several members rather than per member.
    /// </summary>
    private void MakeRoom()
    {
        WaitFor(PendingAt(Math.Max(1, _pendingCount / 4) - 1));
        WaitFor(PendingAt(0));
        WriteFinished();
    }

    /// <summary>Waits until <paramref name="target"/> is finished. While no worker runs (the thread pool may be busy
    /// elsewhere, or its threads not started yet) the caller works through the queue itself, so the archive always
    /// progresses.</summary>
    private void WaitFor(Member target)
    {
        while (!target.Done)
        {
            if (Volatile.Read(ref _running) == 0 && !_todo.IsEmpty)
            {
                var state = TakeState();
                try
                {
                    while (!target.Done && Volatile.Read(ref _running) == 0 && _todo.TryDequeue(out var other)) Process(other, state);
                }
                finally
                {
                    _states.Add(state);
                }
                continue;
            }
            lock (_gate)
            {
                _waitFor = target;
                if (!target.Done) Monitor.Wait(_gate, 100); // pulsed when target finishes; the timeout re-checks the workers
                _waitFor = null;
            }
        }
    }

    /// <summary>Writes every finished member at the head of the window, in order.</summary>
    private void WriteFinished()
    {
        while (_pendingCount > 0 && PendingAt(0).Done) WriteHead();
    }

    /// <summary>Writes the oldest pending member, which is finished.</summary>
    private void WriteHead()
    {
        var m = _pending[_pendingHead];
        _pending[_pendingHead] = null!;
        _pendingHead = (_pendingHead + 1) % _pending.Length;
        _pendingCount--;
        _pendingBytes -= m.Length;
        m.Error?.Throw();
        var record = m.Record!;
        m.Record = null;
        _central.Add(new CentralEntry(m.Name, m.Crc, m.Compressed, m.Length, _offset));
        _out.Write(record);
        _offset += record.LongLength;
    }

    private static int LocalHeaderLength(byte[] name, long uncompressed, long compressed) =>
        30 + name.Length + (NeedsZip64(uncompressed, compressed) ? 20 : 0);

    private static bool NeedsZip64(long uncompressed, long compressed) => uncompressed >= Max32 || compressed >= Max32;

    private void WriteLocalHeader(Span<byte> s, byte[] name, uint crc, long compressed, long uncompressed, ushort method)
    {
        bool zip64 = NeedsZip64(uncompressed, compressed);
        BinaryPrimitives.WriteUInt32LittleEndian(s, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (ushort)(zip64 ? 45 : 20));
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], Flags(name));
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], method);
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], _dosTime);
        BinaryPrimitives.WriteUInt16LittleEndian(s[12..], _dosDate);
        BinaryPrimitives.WriteUInt32LittleEndian(s[14..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(s[18..], zip64 ? Max32 : (uint)compressed);
        BinaryPrimitives.WriteUInt32LittleEndian(s[22..], zip64 ? Max32 : (uint)uncompressed);
        BinaryPrimitives.WriteUInt16LittleEndian(s[26..], (ushort)name.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)(zip64 ? 20 : 0));
        name.CopyTo(s[30..]);
        if (zip64)
        {
            var e = s[(30 + name.Length)..];
            BinaryPrimitives.WriteUInt16LittleEndian(e, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], 16);
            BinaryPrimitives.WriteInt64LittleEndian(e[4..], uncompressed);
            BinaryPrimitives.WriteInt64LittleEndian(e[12..], compressed);
        }
    }

    private static ushort Flags(byte[] name)
    {
        foreach (var b in name) if (b >= 0x80) return 0x800; // UTF-8 file name
        return 0;
    }

    /// <summary>Writes the remaining members and the central directory.</summary>
    /// <exception cref="InvalidOperationException">The archive failed earlier.</exception>
    public void Finish()
    {
        if (_finished) return;
        if (_faulted) throw new InvalidOperationException("the archive failed: a member or the stream could not be written");
        try
        {
            while (_pendingCount > 0)
            {
                WaitFor(PendingAt(0));
                WriteFinished();
            }
            WriteCentralDirectory();
        }
        catch
        {
            Fail();
            throw;
        }
        _finished = true;
    }

    private void WriteCentralDirectory()
    {
        long cdStart = _offset;
        foreach (var c in _central)
        {
            bool big = c.Uncompressed >= Max32 || c.Compressed >= Max32 || c.Offset >= Max32;
            int extra = big ? 4 + 24 : 0;
            var h = new byte[46 + c.Name.Length + extra];
            var s = h.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (ushort)((3 << 8) | (big ? 45 : 20)));
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], (ushort)(big ? 45 : 20));
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], Flags(c.Name));
            BinaryPrimitives.WriteUInt16LittleEndian(s[10..], (ushort)(_deflate ? 8 : 0));
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], _dosTime);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], _dosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(s[16..], c.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(s[20..], big ? Max32 : (uint)c.Compressed);
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], big ? Max32 : (uint)c.Uncompressed);
            BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)c.Name.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(s[30..], (ushort)extra);
            BinaryPrimitives.WriteUInt32LittleEndian(s[38..], 0x180u << 16); // -rw------- as Python's zipfile
            BinaryPrimitives.WriteUInt32LittleEndian(s[42..], big ? Max32 : (uint)c.Offset);
            c.Name.CopyTo(s[46..]);
            if (big)
            {
                var e = s[(46 + c.Name.Length)..];
                BinaryPrimitives.WriteUInt16LittleEndian(e, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(e[2..], 24);
                BinaryPrimitives.WriteInt64LittleEndian(e[4..], c.Uncompressed);
                BinaryPrimitives.WriteInt64LittleEndian(e[12..], c.Compressed);
                BinaryPrimitives.WriteInt64LittleEndian(e[20..], c.Offset);
            }
            _out.Write(h);
            _offset += h.Length;
        }
        long cdSize = _offset - cdStart;
        bool zip64End = _central.Count >= 0xFFFF || cdStart >= Max32 || cdSize >= Max32;
        if (zip64End)
        {
            var z = new byte[56 + 20];
            var s = z.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x06064b50);
            BinaryPrimitives.WriteInt64LittleEndian(s[4..], 44);
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], (3 << 8) | 45);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], 45);
            BinaryPrimitives.WriteInt64LittleEndian(s[24..], _central.Count);
            BinaryPrimitives.WriteInt64LittleEndian(s[32..], _central.Count);
            BinaryPrimitives.WriteInt64LittleEndian(s[40..], cdSize);
            BinaryPrimitives.WriteInt64LittleEndian(s[48..], cdStart);
            BinaryPrimitives.WriteUInt32LittleEndian(s[56..], 0x07064b50);
            BinaryPrimitives.WriteInt64LittleEndian(s[64..], _offset);
            BinaryPrimitives.WriteUInt32LittleEndian(s[72..], 1);
            _out.Write(z);
            _offset += z.Length;
        }
        var eocd = new byte[22];
        var t = eocd.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(t, 0x06054b50);
        ushort count = (ushort)Math.Min(_central.Count, 0xFFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(t[8..], count);
        BinaryPrimitives.WriteUInt16LittleEndian(t[10..], count);
        BinaryPrimitives.WriteUInt32LittleEndian(t[12..], cdSize >= Max32 ? Max32 : (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(t[16..], cdStart >= Max32 ? Max32 : (uint)cdStart);
        _out.Write(eocd);
        _out.Flush();
    }

    /// <summary>Finishes the archive unless it failed, then releases the workers' deflaters (and the stream unless left open).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_faulted) Finish();
        }
        finally
        {
            _abandon = true;
            SpinWait.SpinUntil(() => Volatile.Read(ref _active) == 0);
            lock (_allStates)
                foreach (var s in _allStates) s.Dispose();
            _allStates.Clear();
            if (!_leaveOpen) _out.Dispose();
        }
    }
}
