using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text.Unicode;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>Where a <see cref="PickleWriter"/> sends finished bytes.</summary>
internal interface IPickleOutput
{
    void Write(ReadOnlySpan<byte> data);
}

/// <summary>
/// An output that takes a run of pieces at once: slices of the writer's buffer (opcodes, small values) and, between
/// them, the payloads of bytes, bytearrays and arrays as the values hold them, so that those are not copied before
/// they reach the file. The pieces are valid only during the call.
/// </summary>
internal interface IGatherOutput : IPickleOutput
{
    /// <summary>Writes <paramref name="pieces"/> in order; <paramref name="totalBytes"/> is the sum of their lengths.</summary>
    void Write(IReadOnlyList<ReadOnlyMemory<byte>> pieces, long totalBytes);
}

internal sealed class StreamOutput(Stream stream) : IPickleOutput
{
    public void Write(ReadOnlySpan<byte> data) => stream.Write(data);
}

internal sealed class BufferWriterOutput(IBufferWriter<byte> writer) : IPickleOutput
{
    public void Write(ReadOnlySpan<byte> data) => writer.Write(data);
}

/// <summary>
/// The pickler: writes the value model the way CPython 3.11's C pickler with numpy 1.24 does (opcode
/// choice, memo, batching, framing). One instance writes one pickle; not thread-safe.
/// </summary>
internal sealed class PickleWriter
{
    private const int FrameTarget = 64 * 1024;
    private const int FlushThreshold = 1 << 20;
    private const int BatchSize = 1000;
    private const int MaxRecursion = 3000;
    // Gather mode: payloads from this size on are handed to the output in place instead of being copied into the
    // buffer, and pieces are handed over in runs of about GatherBatch bytes (or MaxPieces pieces). When runs are
    // written on another thread, payloads below FrameTarget are copied: the copy overlaps the write, and a write of
    // few long pieces runs at the speed of one buffer where hundreds of short ones cost the kernel about half again.
    private const int GatherMin = 1024;
    private const int GatherBatch = 1 << 20;
    private const int MaxPieces = 512;
    private const string Latin1Name = "latin1";

    private readonly int _proto;
    private readonly IPickleOutput? _out;
    private readonly IGatherOutput? _gather;
    // Gather mode: the finished pieces not handed over yet (a range of _buf, or an external payload), where the bytes
    // of _buf not yet cut into a piece start, the external bytes pending, and those inside the open frame.
    private readonly List<Piece> _pieces = [];
    private List<ReadOnlyMemory<byte>> _run = [], _runInFlight = [];
    // Gather mode on two cores or more: a run is written on another thread while the pickler goes on in the other of
    // two buffers (one write in flight at most; the pickle's last run is written on the calling thread).
    private readonly bool _overlap;
    private Task? _inFlight;
    private byte[]? _spare;
    private bool _last;
    private int _pieceStart;
    private long _pendingExternal;
    private long _frameExternal;
    private byte[] _buf;
    // With an output, the buffer and its spare are rented at OutputBuffer, which a run (GatherBatch or FlushThreshold,
    // plus an open frame and a payload below FrameTarget) never outgrows, and given back when Dump ends: a push of
    // W5's 11.6 MB otherwise grew its buffer from 4 KiB by doubling and allocated its spare, 5.8 MB of fresh arrays,
    // copies and page faults per push. Only these two arrays go back to the pool (an array grown past them is the
    // collector's), and only after the last write that refers to them has returned.
    private const int OutputBuffer = 2 << 20;
    private byte[]? _rented, _rentedSpare;
    private int _len;
    private int _frameStart = -1;
    private bool _framing;
    private byte[] _scratch = new byte[256];

    private readonly IdentityMemo _memo = new();
    // By-value memo of CPython's singleton str/bytes (see ValueKey): memo index + 1, 0 when not written yet.
    private readonly int[] _valueMemo = new int[ValueKeyCount];
    // Globals and their interned name strings, memoized by value (few; searched linearly, by reference first).
    private readonly List<(string Module, string Name, int Index)> _globalMemo = [];
    private readonly Dictionary<string, int> _nameMemo = new(StringComparer.Ordinal);
    private int _memoCount;
    private int _depth;

    public PickleWriter(int protocol, IPickleOutput? output)
    {
        if (protocol is < 2 or > 5)
            throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "pickle protocols 2 to 5 are supported");
        _proto = protocol;
        _out = output;
        _gather = output as IGatherOutput;
        _overlap = _gather is not null && Environment.ProcessorCount >= 2;
        // Without an output the pickle stays in this buffer, which grows as needed; with one, Dump rents its buffers.
        _buf = output is null ? new byte[4096] : [];
    }

    /// <summary>A piece of output in gather mode: <see cref="Start"/>/<see cref="Length"/> in the buffer, or (Start -1) an external payload.</summary>
    private readonly record struct Piece(ReadOnlyMemory<byte> External, int Start, int Length);

    /// <summary>Writes the whole pickle; with no output the bytes stay in the buffer (see <see cref="ToArray"/>).</summary>
    public void Dump(object? value)
    {
        _memo.Begin();
        if (_out is not null)
        {
            _buf = _rented = ArrayPool<byte>.Shared.Rent(OutputBuffer);
            if (_overlap) _spare = _rentedSpare = ArrayPool<byte>.Shared.Rent(OutputBuffer);
        }
        try
        {
            WriteByte(Op.Proto);
            WriteByte((byte)_proto);
            if (_proto >= 4) _framing = true;
            Save(value);
            WriteByte(Op.Stop);
            CommitFrame();
            _framing = false;
            _last = true;
            Flush(force: true);
            WaitWrite();
        }
        catch
        {
            // Nothing may still write to the output once Dump has returned, even with an error.
            if (_inFlight is { } t) ((IAsyncResult)t).AsyncWaitHandle.WaitOne();
            _inFlight = null;
            throw;
        }
        finally
        {
            _memo.End();
            // No write is in flight here (both paths above waited), and no output keeps a reference to a run.
            if (_rented is not null)
            {
                ArrayPool<byte>.Shared.Return(_rented);
                if (_rentedSpare is not null) ArrayPool<byte>.Shared.Return(_rentedSpare);
                _rented = _rentedSpare = null;
                _buf = [];
                _spare = null;
            }
        }
    }

    /// <summary>Waits for the run written on another thread (and rethrows its error).</summary>
    private void WaitWrite()
    {
        if (_inFlight is not { } t) return;
        _inFlight = null;
        t.GetAwaiter().GetResult();
    }

    public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();

    // ---------------------------------------------------------------- output and framing

    private void Ensure(int n)
    {
        if (_buf.Length - _len >= n) return;
        long want = Math.Max((long)_buf.Length * 2, (long)_len + n);
        if (want > Array.MaxLength) want = Math.Max((long)_len + n, Array.MaxLength);
        if (want > Array.MaxLength) throw new InvalidOperationException("pickle output larger than 2 GB; write to a stream instead");
        Array.Resize(ref _buf, (int)want);
    }

    private void StartFrameIfNeeded()
    {
        if (_framing && _frameStart < 0)
        {
            Ensure(9);
            _frameStart = _len;
            _len += 9;
        }
    }

    private void WriteByte(byte b)
    {
        StartFrameIfNeeded();
        Ensure(1);
        _buf[_len++] = b;
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        StartFrameIfNeeded();
        Ensure(data.Length);
        data.CopyTo(_buf.AsSpan(_len));
        _len += data.Length;
    }

    private void WriteOpU8(byte op, byte arg)
    {
        StartFrameIfNeeded();
        Ensure(2);
        _buf[_len] = op;
        _buf[_len + 1] = arg;
        _len += 2;
    }

    private void WriteOpU32(byte op, uint arg)
    {
        StartFrameIfNeeded();
        Ensure(5);
        _buf[_len] = op;
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(_len + 1), arg);
        _len += 5;
    }

    /// <summary>The length of the open frame's content: what the buffer holds after its header, plus the external payloads in it.</summary>
    private long FrameLength => _len - _frameStart - 9 + _frameExternal;

    private void CommitFrame()
    {
        if (!_framing || _frameStart < 0) return;
        long frameLen = FrameLength;
        if (frameLen >= 4)
        {
            _buf[_frameStart] = Op.Frame;
            BinaryPrimitives.WriteUInt64LittleEndian(_buf.AsSpan(_frameStart + 1), (ulong)frameLen);
        }
        else
        {
            // Too short for a frame: no external payload is in it (those are longer), so it is all in the buffer.
            _buf.AsSpan(_frameStart + 9, (int)frameLen).CopyTo(_buf.AsSpan(_frameStart));
            _len -= 9;
        }
        _frameStart = -1;
        _frameExternal = 0;
        Flush(force: false);
    }

    /// <summary>
    /// Hands finished bytes to the output (never inside an open frame, whose header is not written yet). A stream
    /// output gets every finished frame; a gather output gets runs of about <see cref="GatherBatch"/> bytes, and
    /// everything when <paramref name="force"/> is set.
    /// </summary>
    private void Flush(bool force)
    {
        if (_out is null || _frameStart >= 0) return;
        if (_gather is not null)
        {
            if (force || _len + _pendingExternal >= GatherBatch || _pieces.Count >= MaxPieces) FlushPieces();
            return;
        }
        if (_len == 0) return;
        WaitWrite();
        _out.Write(_buf.AsSpan(0, _len));
        _len = 0;
    }

    private void FlushPieces()
    {
        CutBufferPiece();
        if (_pieces.Count == 0) return;
        WaitWrite();
        long total = 0;
        var run = _run;
        foreach (var p in _pieces)
        {
            run.Add(p.Start < 0 ? p.External : _buf.AsMemory(p.Start, p.Length));
            total += p.Length;
        }
        _pieces.Clear();
        _len = 0;
        _pieceStart = 0;
        _pendingExternal = 0;
        if (!_overlap || _last)
        {
            try
            {
                _gather!.Write(run, total);
            }
            finally
            {
                run.Clear();
            }
            return;
        }
        // The run refers to this buffer: go on in the other one (free, since the previous write is done).
        var gather = _gather!;
        (_buf, _spare) = (_spare is { } s && s.Length >= _buf.Length ? s : new byte[_buf.Length], _buf);
        (_run, _runInFlight) = (_runInFlight, run);
        _inFlight = Task.Run(() =>
        {
            try
            {
                gather.Write(run, total);
            }
            finally
            {
                run.Clear();
            }
        });
    }

    private void CutBufferPiece()
    {
        if (_pieceStart < _len) _pieces.Add(new Piece(default, _pieceStart, _len - _pieceStart));
        _pieceStart = _len;
    }

    /// <summary>Gather mode: <paramref name="payload"/> follows the bytes written so far, without being copied.</summary>
    private void AddExternal(ReadOnlyMemory<byte> payload)
    {
        CutBufferPiece();
        _pieces.Add(new Piece(payload, -1, payload.Length));
        _pendingExternal += payload.Length;
        if (_frameStart >= 0) _frameExternal += payload.Length;
    }

    /// <summary>CPython's check at the start of every save(): close a frame once it reached the target size.</summary>
    private void OpcodeBoundary()
    {
        if (_framing)
        {
            if (_frameStart >= 0 && FrameLength >= FrameTarget) CommitFrame();
        }
        else if (_len + _pendingExternal >= FlushThreshold) Flush(force: _gather is not null);
    }

    /// <summary>An opcode with a length header and a payload; payloads of 64 KiB or more go outside any frame.</summary>
    private void WriteWithPayload(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        if (payload.Length < FrameTarget)
        {
            Write(header);
            Write(payload);
            return;
        }
        CommitFrame();
        bool framing = _framing;
        _framing = false;
        Write(header);
        if (_out is not null)
        {
            Flush(force: true);
            WaitWrite();
            _out.Write(payload);
        }
        else Write(payload);
        _framing = framing;
    }

    /// <summary>
    /// <see cref="WriteWithPayload(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> for a payload that stays unchanged until the
    /// pickle is written: a gather output gets it in place (the same bytes, in the same frames, without a copy).
    /// </summary>
    private void WriteWithPayload(ReadOnlySpan<byte> header, ReadOnlyMemory<byte> payload)
    {
        if (_gather is null || payload.Length < (_overlap ? FrameTarget : GatherMin))
        {
            WriteWithPayload(header, payload.Span);
            return;
        }
        if (payload.Length < FrameTarget)
        {
            Write(header);
            AddExternal(payload);
            return;
        }
        CommitFrame();
        bool framing = _framing;
        _framing = false;
        Write(header);
        AddExternal(payload);
        _framing = framing;
        Flush(force: false);
    }

    // ---------------------------------------------------------------- memo

    private void MemoPut(object key)
    {
        int idx = _memoCount++;
        _memo.Set(key, idx);
        WriteMemoPut(idx);
    }

    /// <summary>Memoizes an object that cannot occur again (a fresh argument tuple or buffer): only the index is used up.</summary>
    private void MemoFresh() => WriteMemoPut(_memoCount++);

    private void MemoPutValue(int key)
    {
        int idx = _memoCount++;
        _valueMemo[key] = idx + 1;
        WriteMemoPut(idx);
    }

    private void WriteMemoPut(int idx)
    {
        if (_proto >= 4) WriteByte(Op.Memoize);
        else if (idx < 256) WriteOpU8(Op.BinPut, (byte)idx);
        else WriteOpU32(Op.LongBinPut, (uint)idx);
    }

    private void MemoGet(int idx)
    {
        if (idx < 256) WriteOpU8(Op.BinGet, (byte)idx);
        else WriteOpU32(Op.LongBinGet, (uint)idx);
    }

    private const int NoValueKey = -1;
    private const int ValueKeyCount = 1 + 256 + 1 + 256;

    /// <summary>
    /// The by-value memo key of objects CPython keeps as singletons (empty and one-character str, empty and
    /// one-byte bytes), or <see cref="NoValueKey"/> when the object is memoized by identity (dtypes too: which
    /// numpy dtype objects are shared depends on how the arrays were made, and the reader keeps the file's sharing).
    /// </summary>
    private static int ValueKey(object o) => o switch
    {
        string { Length: 0 } => 0,
        string { Length: 1 } s when s[0] < 256 => 1 + s[0],
        PyBytes { Length: 0 } => 257,
        PyBytes { Length: 1 } b => 258 + b.Data.Span[0],
        _ => NoValueKey,
    };

    private bool TryMemoGet(object o, out int valueKey)
    {
        valueKey = ValueKey(o);
        if (valueKey != NoValueKey)
        {
            int vi = _valueMemo[valueKey];
            if (vi > 0) { MemoGet(vi - 1); return true; }
            return false;
        }
        if (_memo.TryGetValue(o, out int i)) { MemoGet(i); return true; }
        return false;
    }

    private void Memoize(object? o, int valueKey)
    {
        if (valueKey != NoValueKey) MemoPutValue(valueKey);
        else if (o is null) MemoFresh();
        else MemoPut(o);
    }

    // ---------------------------------------------------------------- save

    private void Save(object? o)
    {
        OpcodeBoundary();
        switch (o)
        {
            case null or PyNone: WriteByte(Op.None); return;
            case bool b: WriteByte(b ? Op.NewTrue : Op.NewFalse); return;
            case long l: SaveInt(l); return;
            case int i: SaveInt(i); return;
            case ulong u: if (u <= long.MaxValue) SaveInt((long)u); else SaveBigInt(u); return;
            case BigInteger bi: if (bi >= long.MinValue && bi <= long.MaxValue) SaveInt((long)bi); else SaveBigInt(bi); return;
            case double d: SaveFloat(d); return;
            case float f: SaveFloat(f); return;
        }
        if (TryMemoGet(o, out var valueKey)) return;
        if (++_depth > MaxRecursion) { _depth--; throw new ArgumentException($"value nests deeper than {MaxRecursion} levels; cannot pickle it"); }
        // Shallow levels cannot exhaust the stack; store files nest a handful of levels, so they skip the check.
        if (_depth > 64 && !RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            _depth--;
            throw new ArgumentException($"value nests too deeply for the call stack ({_depth} levels); cannot pickle it");
        }
        try
        {
            switch (o)
            {
                case string s: SaveStr(s, valueKey); break;
                case PyBytes pb: SaveBytes(pb.Data, pb, valueKey); break;
                case PyByteArray ba: SaveByteArray(ba); break;
                case PyTuple t: SaveTuple(t); break;
                case PyList l: SaveList(l); break;
                case PyDefaultDict dd: SaveDefaultDict(dd); break;
                case PyOrderedDict od: SaveOrderedDict(od); break;
                case PyDict d: SaveDict(d); break;
                case PySet set: if (set.IsFrozen) SaveFrozenSet(set); else SaveSet(set); break;
                case Complex c: SaveComplex(c, o); break;
                case NpScalar sc: SaveScalar(sc); break;
                case DType dt: SaveDType(dt, valueKey); break;
                case NdArray a: SaveArray(a); break;
                default: throw new ArgumentException($"a {o.GetType().FullName} is not part of the Python value model and cannot be pickled");
            }
        }
        finally
        {
            _depth--;
        }
    }

    private void SaveInt(long v)
    {
        if (v >= 0 && v <= 0xFF) { WriteOpU8(Op.BinInt1, (byte)v); return; }
        if (v >= 0 && v <= 0xFFFF)
        {
            StartFrameIfNeeded();
            Ensure(3);
            _buf[_len] = Op.BinInt2;
            BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len + 1), (ushort)v);
            _len += 3;
            return;
        }
        if (v >= int.MinValue && v <= int.MaxValue) { WriteOpU32(Op.BinInt, (uint)(int)v); return; }
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        int n = 8;
        while (n > 1 && ((b[n - 1] == 0 && (b[n - 2] & 0x80) == 0) || (b[n - 1] == 0xFF && (b[n - 2] & 0x80) != 0))) n--;
        WriteOpU8(Op.Long1, (byte)n);
        Write(b[..n]);
    }

    private void SaveBigInt(BigInteger v)
    {
        int n = v.GetByteCount(isUnsigned: false);
        var bytes = n <= 256 ? stackalloc byte[n] : new byte[n];
        v.TryWriteBytes(bytes, out _, isUnsigned: false, isBigEndian: false);
        if (n < 256) WriteOpU8(Op.Long1, (byte)n);
        else WriteOpU32(Op.Long4, (uint)n);
        Write(bytes);
    }

    private void SaveFloat(double d)
    {
        StartFrameIfNeeded();
        Ensure(9);
        _buf[_len] = Op.BinFloat;
        BinaryPrimitives.WriteDoubleBigEndian(_buf.AsSpan(_len + 1), d);
        _len += 9;
    }

    private void SaveStr(string s, int valueKey)
    {
        int max = s.Length * 3;
        if (_scratch.Length < max) _scratch = new byte[Math.Max(max, _scratch.Length * 2)];
        ReadOnlySpan<byte> utf8;
        if (Utf8.FromUtf16(s, _scratch, out _, out int written, replaceInvalidSequences: false) == OperationStatus.Done)
            utf8 = _scratch.AsSpan(0, written);
        else
            utf8 = TypedJson.Utf8Surrogatepass(s);
        Span<byte> header = stackalloc byte[9];
        int hl;
        if (_proto >= 4 && utf8.Length < 256) { header[0] = Op.ShortBinUnicode; header[1] = (byte)utf8.Length; hl = 2; }
        else if (_proto >= 4 && (ulong)utf8.Length > uint.MaxValue) { header[0] = Op.BinUnicode8; BinaryPrimitives.WriteUInt64LittleEndian(header[1..], (ulong)utf8.Length); hl = 9; }
        else { header[0] = Op.BinUnicode; BinaryPrimitives.WriteUInt32LittleEndian(header[1..], (uint)utf8.Length); hl = 5; }
        WriteWithPayload(header[..hl], utf8);
        Memoize(s, valueKey);
    }

    /// <summary>
    /// Writes a bytes object; <paramref name="memoKey"/> is memoized after it (by value when <paramref name="valueKey"/>
    /// is set; a null key stands for a fresh object that cannot occur again: only its memo index is used up).
    /// </summary>
    private void SaveBytes(ReadOnlyMemory<byte> data, object? memoKey, int valueKey)
    {
        if (_proto < 3)
        {
            if (data.Length == 0)
            {
                SaveGlobal("builtins", "bytes");
                SaveArgs();
            }
            else
            {
                SaveGlobal("_codecs", "encode");
                var chars = new char[data.Length];
                var span = data.Span;
                for (int i = 0; i < chars.Length; i++) chars[i] = (char)span[i];
                SaveArgs(new string(chars), Latin1Name);
            }
            WriteByte(Op.Reduce);
            Memoize(memoKey, valueKey);
            return;
        }
        WriteBytesOpcode(data);
        Memoize(memoKey, valueKey);
    }

    private void WriteBytesOpcode(ReadOnlyMemory<byte> data)
    {
        Span<byte> header = stackalloc byte[9];
        int hl;
        if (data.Length < 256) { header[0] = Op.ShortBinBytes; header[1] = (byte)data.Length; hl = 2; }
        else if ((ulong)data.Length <= uint.MaxValue || _proto < 4) { header[0] = Op.BinBytes; BinaryPrimitives.WriteUInt32LittleEndian(header[1..], (uint)data.Length); hl = 5; }
        else { header[0] = Op.BinBytes8; BinaryPrimitives.WriteUInt64LittleEndian(header[1..], (ulong)data.Length); hl = 9; }
        WriteWithPayload(header[..hl], data);
    }

    private void SaveByteArray(PyByteArray ba)
    {
        if (_proto >= 5)
        {
            WriteByteArray8(ba.Data);
            MemoPut(ba);
            return;
        }
        SaveGlobal("builtins", "bytearray");
        if (ba.Data.Length == 0) SaveArgs();
        else SaveArgs(new PyBytes(ba.Data.ToArray()));
        WriteByte(Op.Reduce);
        MemoPut(ba);
    }

    private void WriteByteArray8(ReadOnlyMemory<byte> data)
    {
        Span<byte> header = stackalloc byte[9];
        header[0] = Op.ByteArray8;
        BinaryPrimitives.WriteUInt64LittleEndian(header[1..], (ulong)data.Length);
        WriteWithPayload(header, data);
    }

    private void SaveTuple(PyTuple t)
    {
        int n = t.Count;
        if (n == 0) { WriteByte(Op.EmptyTuple); return; }
        if (n <= 3)
        {
            for (int i = 0; i < n; i++) Save(t[i]);
            if (_memo.TryGetValue(t, out int idx))
            {
                for (int i = 0; i < n; i++) WriteByte(Op.Pop);
                MemoGet(idx);
                return;
            }
            WriteByte(n == 1 ? Op.Tuple1 : n == 2 ? Op.Tuple2 : Op.Tuple3);
        }
        else
        {
            WriteByte(Op.Mark);
            for (int i = 0; i < n; i++) Save(t[i]);
            if (_memo.TryGetValue(t, out int idx))
            {
                WriteByte(Op.PopMark);
                MemoGet(idx);
                return;
            }
            WriteByte(Op.Tuple);
        }
        MemoPut(t);
    }

    /// <summary>Writes a tuple that is not part of the value (reduce arguments): a fresh object for the memo.</summary>
    private void SaveArgs(params object?[] items)
    {
        OpcodeBoundary();
        int n = items.Length;
        if (n == 0) { WriteByte(Op.EmptyTuple); return; }
        if (n > 3) WriteByte(Op.Mark);
        foreach (var item in items) Save(item);
        WriteByte(n switch { 1 => Op.Tuple1, 2 => Op.Tuple2, 3 => Op.Tuple3, _ => Op.Tuple });
        MemoFresh();
    }

    private void SaveList(PyList l)
    {
        WriteByte(Op.EmptyList);
        MemoPut(l);
        WriteListItems(l);
    }

    private void WriteListItems(IReadOnlyList<object?> l)
    {
        int n = l.Count;
        if (n == 0) return;
        if (n == 1)
        {
            Save(l[0]);
            WriteByte(Op.Append);
            return;
        }
        int total = 0;
        do
        {
            WriteByte(Op.Mark);
            int batch = 0;
            while (total < n)
            {
                Save(l[total++]);
                if (++batch == BatchSize) break;
            }
            WriteByte(Op.Appends);
        } while (total < n);
    }

    private void SaveDict(PyDict d)
    {
        WriteByte(Op.EmptyDict);
        MemoPut(d);
        int n = d.Count;
        if (n == 0) return;
        if (n == 1)
        {
            var kv = d.GetAt(0);
            Save(kv.Key);
            Save(kv.Value);
            WriteByte(Op.SetItem);
            return;
        }
        // CPython's exact-dict batching: a full last batch is followed by an empty MARK/SETITEMS pair.
        int pos = 0;
        int i;
        do
        {
            i = 0;
            WriteByte(Op.Mark);
            while (pos < n)
            {
                var kv = d.GetAt(pos++);
                Save(kv.Key);
                Save(kv.Value);
                if (pos == SampleItems && n >= 4 * SampleItems) ReserveMemo(n);
                if (++i == BatchSize) break;
            }
            WriteByte(Op.SetItems);
        } while (i == BatchSize);
    }

    // A big dict (a store's): after its first SampleItems items, the memo is sized once for as many objects per item
    // for all of them, instead of doubling (and rehashing) its way there.
    private const int SampleItems = 64;

    private void ReserveMemo(int items)
    {
        long expected = (long)_memo.HashedCount * items / SampleItems * 9 / 8;
        if (expected > _memo.HashedCount) _memo.Reserve((int)Math.Min(expected, 1 << 26));
    }

    /// <summary>CPython's generic batching of dict items (dict subclasses): one item uses SETITEM.</summary>
    private void WriteDictItemsGeneric(PyDict d)
    {
        int n = d.Count;
        int pos = 0;
        while (pos < n)
        {
            if (n - pos == 1)
            {
                var kv = d.GetAt(pos++);
                Save(kv.Key);
                Save(kv.Value);
                WriteByte(Op.SetItem);
                return;
            }
            WriteByte(Op.Mark);
            int batch = 0;
            while (pos < n && batch < BatchSize)
            {
                var kv = d.GetAt(pos++);
                Save(kv.Key);
                Save(kv.Value);
                batch++;
            }
            WriteByte(Op.SetItems);
            if (batch < BatchSize) return;
        }
    }

    private void SaveDefaultDict(PyDefaultDict dd)
    {
        SaveGlobal("collections", "defaultdict");
        if (dd.DefaultFactory is null) { OpcodeBoundary(); WriteByte(Op.EmptyTuple); }
        else
        {
            OpcodeBoundary();
            var (module, name) = FactoryGlobal(dd.DefaultFactory);
            SaveGlobal(module, name);
            WriteByte(Op.Tuple1);
            MemoFresh();
        }
        WriteByte(Op.Reduce);
        MemoPut(dd);
        WriteDictItemsGeneric(dd);
    }

    private static (string Module, string Name) FactoryGlobal(string factory) => factory switch
    {
        "int" or "float" or "complex" or "str" or "bytes" or "bytearray" or "list" or "tuple" or "dict" or "set" or "frozenset" or "bool"
            => ("builtins", factory),
        "OrderedDict" or "defaultdict" or "Counter" or "deque" => ("collections", factory),
        _ => throw new ArgumentException($"defaultdict factory '{factory}' cannot be pickled (only builtin types and collections classes)"),
    };

    private void SaveOrderedDict(PyOrderedDict od)
    {
        SaveGlobal("collections", "OrderedDict");
        OpcodeBoundary();
        WriteByte(Op.EmptyTuple);
        WriteByte(Op.Reduce);
        MemoPut(od);
        WriteDictItemsGeneric(od);
    }

    private void SaveSet(PySet set)
    {
        if (_proto < 4)
        {
            SaveSetReduce(set, "set");
            return;
        }
        WriteByte(Op.EmptySet);
        MemoPut(set);
        if (set.Count == 0) return;
        using var it = set.GetEnumerator();
        bool more = true;
        int i;
        do
        {
            i = 0;
            WriteByte(Op.Mark);
            while (more && (more = it.MoveNext()))
            {
                Save(it.Current);
                if (++i == BatchSize) break;
            }
            WriteByte(Op.AddItems);
        } while (i == BatchSize);
    }

    private void SaveSetReduce(PySet set, string type)
    {
        SaveGlobal("builtins", type);
        SaveArgs(new PyList(set));
        WriteByte(Op.Reduce);
        if (_memo.TryGetValue(set, out int idx))
        {
            WriteByte(Op.Pop);
            MemoGet(idx);
            return;
        }
        MemoPut(set);
    }

    private void SaveFrozenSet(PySet set)
    {
        if (_proto < 4)
        {
            SaveSetReduce(set, "frozenset");
            return;
        }
        WriteByte(Op.Mark);
        foreach (var item in set) Save(item);
        if (_memo.TryGetValue(set, out int idx))
        {
            WriteByte(Op.PopMark);
            MemoGet(idx);
            return;
        }
        WriteByte(Op.FrozenSet);
        MemoPut(set);
    }

    private void SaveComplex(Complex c, object box)
    {
        SaveGlobal("builtins", "complex");
        SaveArgs(c.Real, c.Imaginary);
        WriteByte(Op.Reduce);
        MemoPut(box);
    }

    // ---------------------------------------------------------------- globals

    private void SaveGlobal(string module, string name)
    {
        OpcodeBoundary();
        if (_proto < 3)
        {
            if (module == "builtins")
            {
                module = "__builtin__";
                name = name switch { "int" => "long", "str" => "unicode", _ => name };
            }
            else if (module == "copyreg") module = "copy_reg";
        }
        foreach (var (m, n, index) in _globalMemo)
        {
            if ((ReferenceEquals(m, module) || m == module) && (ReferenceEquals(n, name) || n == name))
            {
                MemoGet(index);
                return;
            }
        }
        if (_proto >= 4)
        {
            SaveGlobalName(module);
            SaveGlobalName(name);
            WriteByte(Op.StackGlobal);
        }
        else
        {
            int n = module.Length + name.Length + 3;
            Span<byte> line = stackalloc byte[n];
            line[0] = Op.Global;
            int p = 1 + System.Text.Encoding.ASCII.GetBytes(module, line[1..]);
            line[p++] = (byte)'\n';
            p += System.Text.Encoding.ASCII.GetBytes(name, line[p..]);
            line[p] = (byte)'\n';
            Write(line);
        }
        _globalMemo.Add((module, name, _memoCount));
        MemoFresh();
    }

    /// <summary>Module and attribute names are interned in CPython: equal names share one memo entry.</summary>
    private void SaveGlobalName(string s)
    {
        OpcodeBoundary();
        if (_nameMemo.TryGetValue(s, out int idx)) { MemoGet(idx); return; }
        var bytes = System.Text.Encoding.UTF8.GetBytes(s);
        Span<byte> header = [Op.ShortBinUnicode, (byte)bytes.Length];
        Write(header);
        Write(bytes);
        _nameMemo[s] = _memoCount;
        MemoFresh();
    }

    // ---------------------------------------------------------------- numpy

    private void SaveDType(DType dt, int valueKey)
    {
        SaveGlobal("numpy", "dtype");
        // numpy builds this string afresh for every dtype, so it is never shared through the memo.
        SaveArgs(new string(dt.PickleTypeCode.AsSpan()), false, true);
        WriteByte(Op.Reduce);
        Memoize(dt, valueKey);
        OpcodeBoundary();
        if (dt.PickleState is PyTuple state) Save(state);
        else SaveArgs(DTypeState(dt));
        WriteByte(Op.Build);
    }

    private static object?[] DTypeState(DType dt)
    {
        string order = dt.ByteOrder.ToString();
        long elsize = -1, align = -1, flags = 0;
        switch (dt.Kind)
        {
            case 'S': elsize = dt.ItemSize; align = 1; break;
            case 'U': elsize = dt.ItemSize; align = 4; flags = 8; break;
            case 'V': elsize = dt.ItemSize; align = 1; break;
            case 'O': flags = 63; break;
        }
        if (dt.Kind is 'M' or 'm')
        {
            string unit = dt.Unit.Length >= 2 ? dt.Unit[1..^1] : "generic";
            int digits = 0;
            while (digits < unit.Length && char.IsAsciiDigit(unit[digits])) digits++;
            long num = digits > 0 ? long.Parse(unit[..digits], System.Globalization.CultureInfo.InvariantCulture) : 1;
            var unitBytes = new PyBytes(System.Text.Encoding.ASCII.GetBytes(unit[digits..]));
            var meta = new PyTuple(new PyDict(), new PyTuple(unitBytes, num, 1L, 1L));
            return [4L, order, null, null, null, elsize, align, flags, meta];
        }
        return [3L, order, null, null, null, elsize, align, flags];
    }

    private void SaveScalar(NpScalar sc)
    {
        SaveGlobal("numpy.core.multiarray", "scalar");
        OpcodeBoundary();
        Save(sc.DType);
        if (sc.DType.Kind == 'O') Save(sc.ObjectValue);
        else if (sc.Raw.Length < 2) Save(new PyBytes(sc.Raw)); // CPython's bytes singletons: memoized by value
        else
        {
            // What Save(new PyBytes(raw)) does, without a memo entry for a bytes object nothing else can refer to.
            OpcodeBoundary();
            if (_depth + 1 > MaxRecursion) throw new ArgumentException($"value nests deeper than {MaxRecursion} levels; cannot pickle it");
            _depth++;
            SaveBytes(sc.Raw, null, NoValueKey);
            _depth--;
        }
        WriteByte(Op.Tuple2);
        MemoFresh();
        WriteByte(Op.Reduce);
        MemoPut(sc);
    }

    private void SaveArray(NdArray a)
    {
        bool fortran = a.Order == ArrayOrder.F && !a.IsCContiguous;
        if (_proto >= 5 && a.DType.Kind != 'O' && a.DType.ItemSize > 0)
        {
            SaveGlobal("numpy.core.numeric", "_frombuffer");
            OpcodeBoundary();
            WriteByte(Op.Mark);
            OpcodeBoundary();
            if ((ArrayHints.Get(a) & ArrayHint.ReadOnly) != 0) WriteBytesOpcode(a.Data);
            else WriteByteArray8(a.Data);
            MemoFresh();
            Save(a.DType);
            SaveShape(a);
            Save(fortran ? "F" : "C");
            WriteByte(Op.Tuple);
            MemoFresh();
            WriteByte(Op.Reduce);
            MemoPut(a);
            return;
        }
        SaveGlobal("numpy.core.multiarray", "_reconstruct");
        OpcodeBoundary();
        SaveGlobal("numpy", "ndarray");
        SaveArgs(0L);
        Save(new PyBytes("b"u8.ToArray()));
        WriteByte(Op.Tuple3);
        MemoFresh();
        WriteByte(Op.Reduce);
        MemoPut(a);
        OpcodeBoundary();
        WriteByte(Op.Mark);
        Save(1L);
        SaveShape(a);
        Save(a.DType);
        Save(fortran);
        if (a.Objects is not null)
        {
            var list = new PyList(a.Objects.Count);
            foreach (var item in a.Objects) list.Add(item ?? PyNone.Value);
            Save(list);
        }
        else Save(new PyBytes(fortran ? a.Data : a.ToCBytes()));
        WriteByte(Op.Tuple);
        MemoFresh();
        WriteByte(Op.Build);
    }

    /// <summary>The shape tuple, as <c>SaveArgs(dims...)</c> writes it, without boxing the dimensions.</summary>
    private void SaveShape(NdArray a)
    {
        var shape = a.Shape;
        OpcodeBoundary();
        int n = shape.Length;
        if (n == 0) { WriteByte(Op.EmptyTuple); return; }
        if (n > 3) WriteByte(Op.Mark);
        for (int i = 0; i < n; i++)
        {
            OpcodeBoundary();
            SaveInt(shape[i]);
        }
        WriteByte(n switch { 1 => Op.Tuple1, 2 => Op.Tuple2, 3 => Op.Tuple3, _ => Op.Tuple });
        MemoFresh();
    }
}

/// <summary>
/// The writer's memo: object identity to memo index, an open-addressing table (linear probing, power-of-two
/// size, at most 5/8 full) of key/index pairs side by side, so that a probe touches one cache line. With the
/// millions of objects of a store file the table is far bigger than the caches and every probe is a cache
/// miss (a Dictionary with a reference comparer costs two or three). Most objects of a store are new to the
/// memo, so two things keep those misses off the common path: a bit filter (two bits per key, 1/16 full at most,
/// small enough to stay in the core's cache) answers "never seen" without a probe, and new keys wait in a list
/// written in order and go into the table in batches (independent inserts, whose misses the core overlaps),
/// when a lookup needs the table or the list is full; keys found before are answered from a small cache of hits
/// first, so the few objects every entry repeats do not empty that list each time. Not thread-safe.
/// </summary>
internal sealed class IdentityMemo
{
    // The identity hash is kept beside the key: reading it again from the object would touch the object, which
    // by the time the table is filled or grown has long left the cache.
    private struct Slot
    {
        public object? Key;
        public int Value;
        public uint Hash;
    }

    private const int PendingBatch = 4096;

    private Slot[] _slots;
    private int _count;
    private int _limit;
    private int _shift;

    private ulong[] _filter;
    private int _filterShift;
    private int _filterLimit;
    private int _keys;

    private readonly Slot[] _pending = new Slot[PendingBatch];
    private int _pendingCount;

    // Keys found before (the dict keys and dtype strings every entry repeats), direct-mapped by hash: a repeat is
    // answered here without emptying the pending list into the table for it.
    private const int HitCacheSize = 64;
    private readonly Slot[] _hits = new Slot[HitCacheSize];

    /// <summary>An empty memo with room for about <paramref name="expected"/> entries before it grows.</summary>
    public IdentityMemo(int expected = 0)
    {
        int size = 256;
        while (size < (1 << 28) && size / 8 * 5 < expected) size <<= 1;
        _slots = new Slot[size];
        _limit = size / 8 * 5;
        _shift = 32 - BitOperations.Log2((uint)size);
        int bits = 1 << 16;
        while (bits < (1 << 30) && bits / 16 < expected) bits <<= 1;
        _filter = new ulong[bits / 64];
        _filterLimit = bits / 16;
        _filterShift = 64 - BitOperations.Log2((uint)bits);
    }

    /// <summary>The number of keys.</summary>
    public int Count => _keys;

    /// <summary>The number of keys kept in the table (not marked on the object).</summary>
    public int HashedCount => _hashed;

    // ---------------------------------------------------------------- marks
    //
    // Most objects a store pickles (dicts, lists, tuples, arrays, numpy scalars, bytes) carry a mark: the stamp of the
    // pickler run that wrote them and their memo index (IPickleMarked). A run finds its own marks without a lookup in
    // the table, whose random accesses cost a cache miss per object. Several runs may write the same objects at once
    // (two stores pushed from two threads): a run never takes over a mark whose stamp belongs to a run still going
    // (the table of live stamps says which), and keeps such objects in its table instead.

    private const int IndexBits = 24;
    private const long IndexMask = (1L << IndexBits) - 1;
    private static long s_stamps;
    private static readonly long[] s_live = new long[64];
    private static int s_liveTop;
    private long _stamp;
    private int _liveSlot = -1;
    private int _hashed;
    private int _markedHashed; // markable objects kept in the table: their marks belonged to another live run

    /// <summary>Starts a pickler run: takes a stamp, so that objects can be marked. Without a free slot, nothing is marked.</summary>
    public void Begin()
    {
        long stamp = (Interlocked.Increment(ref s_stamps) & ((1L << 38) - 1)) + 1;
        for (int i = 0; i < s_live.Length; i++)
        {
            if (Interlocked.CompareExchange(ref s_live[i], stamp, 0) != 0) continue;
            int top;
            while ((top = Volatile.Read(ref s_liveTop)) <= i && Interlocked.CompareExchange(ref s_liveTop, i + 1, top) != top) { }
            _liveSlot = i;
            _stamp = stamp;
            return;
        }
    }

    /// <summary>Ends the run: its marks are stale from now on (other runs may take them over).</summary>
    public void End()
    {
        _stamp = 0;
        if (_liveSlot >= 0) Volatile.Write(ref s_live[_liveSlot], 0);
        _liveSlot = -1;
    }

    private static bool IsLive(long stamp)
    {
        int top = Volatile.Read(ref s_liveTop);
        for (int i = 0; i < top; i++)
            if (Volatile.Read(ref s_live[i]) == stamp) return true;
        return false;
    }

    /// <summary>Makes room for about <paramref name="expected"/> keys in all, so that adding them does not grow the memo again.</summary>
    public void Reserve(int expected)
    {
        if (_pendingCount > 0) FlushPending();
        int size = _slots.Length;
        while (size < (1 << 28) && size / 8 * 5 < expected) size <<= 1;
        if (_slots.Length < size) GrowTo(size);
        int bits = _filter.Length * 64;
        while (bits < (1 << 30) && bits / 16 < expected) bits <<= 1;
        if (bits > _filter.Length * 64) GrowFilterTo(bits);
    }

    public bool TryGetValue(object key, out int value)
    {
        if (_stamp != 0 && key is IPickleMarked marked)
        {
            long mark = Volatile.Read(ref marked.PickleMark);
            long stamp = mark >> IndexBits;
            if (stamp == _stamp)
            {
                value = (int)(mark & IndexMask);
                return true;
            }
            if (_markedHashed == 0 && (stamp == 0 || !IsLive(stamp)))
            {
                value = 0;
                return false; // had this run written it, its own stamp would be there
            }
        }
        uint hash = (uint)RuntimeHelpers.GetHashCode(key);
        if (!MayContain(hash))
        {
            value = 0;
            return false;
        }
        ref var hit = ref _hits[(int)(hash & (HitCacheSize - 1))];
        if (ReferenceEquals(hit.Key, key))
        {
            value = hit.Value;
            return true;
        }
        if (_pendingCount > 0) FlushPending();
        if (!Probe(key, hash, out value)) return false;
        hit = new Slot { Key = key, Value = value, Hash = hash };
        return true;
    }

    /// <summary>Sets the index of <paramref name="key"/> (adds it, or replaces the index it had).</summary>
    public void Set(object key, int value)
    {
        if (_stamp != 0 && key is IPickleMarked marked)
        {
            if (value <= IndexMask && TryMark(ref marked.PickleMark, value)) return;
            _markedHashed++;
        }
        uint hash = (uint)RuntimeHelpers.GetHashCode(key);
        if (MayContain(hash))
        {
            ref var hit = ref _hits[(int)(hash & (HitCacheSize - 1))];
            if (ReferenceEquals(hit.Key, key)) hit.Value = value;
            if (_pendingCount > 0) FlushPending();
            if (Replace(key, hash, value)) return;
        }
        else AddToFilter(hash);
        if (_pendingCount == PendingBatch) FlushPending();
        _pending[_pendingCount++] = new Slot { Key = key, Value = value, Hash = hash };
        _keys++;
        _hashed++;
        if (_hashed > _filterLimit) GrowFilter();
    }

    // Marks the object with this run's stamp and its index, unless another live run's stamp is on it.
    private bool TryMark(ref long mark, int value)
    {
        while (true)
        {
            long old = Volatile.Read(ref mark);
            long stamp = old >> IndexBits;
            if (stamp != _stamp && stamp != 0 && IsLive(stamp)) return false;
            if (Interlocked.CompareExchange(ref mark, (_stamp << IndexBits) | (uint)value, old) != old) continue;
            if (stamp != _stamp) _keys++;
            return true;
        }
    }

    // ---------------------------------------------------------------- filter

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong FilterHash(uint hash) => hash * 0x9E3779B97F4A7C15UL;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool MayContain(uint hash)
    {
        ulong h = FilterHash(hash);
        var f = _filter;
        int shift = _filterShift;
        ulong a = h >> shift;
        ulong b = (h << (64 - shift)) >> shift;
        return (f[a >> 6] & (1UL << (int)a)) != 0 && (f[b >> 6] & (1UL << (int)b)) != 0;
    }

    private void AddToFilter(uint hash)
    {
        ulong h = FilterHash(hash);
        int shift = _filterShift;
        ulong a = h >> shift;
        ulong b = (h << (64 - shift)) >> shift;
        _filter[a >> 6] |= 1UL << (int)a;
        _filter[b >> 6] |= 1UL << (int)b;
    }

    private void GrowFilter() => GrowFilterTo(_filter.Length * 64 * 2);

    private void GrowFilterTo(int bits)
    {
        _filter = new ulong[bits / 64];
        _filterShift = 64 - BitOperations.Log2((uint)bits);
        _filterLimit = bits / 16;
        foreach (var s in _slots)
            if (s.Key is not null) AddToFilter(s.Hash);
        for (int i = 0; i < _pendingCount; i++) AddToFilter(_pending[i].Hash);
    }

    // ---------------------------------------------------------------- table

    private void FlushPending()
    {
        for (int i = 0; i < _pendingCount; i++)
        {
            ref var p = ref _pending[i];
            Insert(p.Key!, p.Value, p.Hash);
            p.Key = null;
        }
        _pendingCount = 0;
    }

    private bool Probe(object key, uint hash, out int value)
    {
        var slots = _slots;
        int mask = slots.Length - 1;
        int i = Index(hash, _shift);
        while (true)
        {
            ref var s = ref slots[i];
            if (s.Key is null) break;
            if (ReferenceEquals(s.Key, key))
            {
                value = s.Value;
                return true;
            }
            i = (i + 1) & mask;
        }
        value = 0;
        return false;
    }

    private bool Replace(object key, uint hash, int value)
    {
        var slots = _slots;
        int mask = slots.Length - 1;
        int i = Index(hash, _shift);
        while (true)
        {
            ref var s = ref slots[i];
            if (s.Key is null) return false;
            if (ReferenceEquals(s.Key, key))
            {
                s.Value = value;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// <summary>Adds a key known not to be in the table.</summary>
    private void Insert(object key, int value, uint hash)
    {
        if (_count >= _limit) Grow();
        var slots = _slots;
        int mask = slots.Length - 1;
        int i = Index(hash, _shift);
        while (slots[i].Key is not null) i = (i + 1) & mask;
        ref var s = ref slots[i];
        s.Key = key;
        s.Value = value;
        s.Hash = hash;
        _count++;
    }

    // Fibonacci hashing: the top bits of the product depend on all bits of the identity hash code, whose
    // low bits alone are poorly distributed (they come from a linear congruential generator).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Index(uint hash, int shift) => (int)(hash * 0x9E3779B1u >> shift);

    private void Grow() => GrowTo(_slots.Length * 2);

    private void GrowTo(int size)
    {
        var old = _slots;
        var slots = new Slot[size];
        int mask = slots.Length - 1;
        int shift = 32 - BitOperations.Log2((uint)size);
        foreach (var e in old)
        {
            if (e.Key is null) continue;
            int i = Index(e.Hash, shift);
            while (slots[i].Key is not null) i = (i + 1) & mask;
            slots[i] = e;
        }
        _slots = slots;
        _limit = slots.Length / 8 * 5;
        _shift = shift;
    }
}
