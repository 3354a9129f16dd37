using Microsoft.Win32.SafeHandles;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using PickleApi = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// The positional file writer (<see cref="PickleFile.Dump(object?, SafeFileHandle, long, int)"/>, what a store push
/// uses): payloads go to the file in place, in runs of pieces, and the bytes must be those of the buffered writer
/// (which the fixture tests hold to CPython's) for every fixture, protocol and payload size.
/// </summary>
public class PickleFileWriterTests
{
    private static byte[] DumpToFile(object? value, int protocol, long offset = 0)
    {
        using var dir = new TempDir();
        string p = dir.File("out.pkl");
        long written;
        using (var h = File.OpenHandle(p, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            if (offset > 0) RandomAccess.Write(h, new byte[offset], 0);
            written = PickleFile.Dump(value, h, offset, protocol);
        }
        var bytes = File.ReadAllBytes(p);
        Assert.Equal(offset + written, bytes.LongLength);
        return bytes[(int)offset..];
    }

    private static byte[] DumpToStream(object? value, int protocol)
    {
        using var ms = new MemoryStream();
        PickleApi.Dump(value, ms, protocol);
        return ms.ToArray();
    }

    [SkippableTheory]
    [MemberData(nameof(PickleFixtureTests.All), MemberType = typeof(PickleFixtureTests))]
    public void Every_fixture_is_written_as_the_buffered_writer_writes_it(string name)
    {
        var file = PickleFixtureTests.Read(name);
        var value = PickleApi.Load(file, sourceName: name);
        foreach (int protocol in new[] { 2, 3, 4, 5 })
        {
            var expected = PickleApi.Dump(value, protocol);
            Assert.Equal(expected, DumpToFile(value, protocol));
            Assert.Equal(expected, DumpToStream(value, protocol));
        }
        if (PickleFixtureTests.ByteExact.Contains(name)) Assert.Equal(file, DumpToFile(value, file[1])); // PROTO n opens the file
    }

    /// <summary>Payload sizes around every threshold of the writer: copied or handed over in place (1 KiB), inside
    /// or outside a frame (64 KiB), and larger than one run of pieces (1 MiB).</summary>
    public static readonly int[] Sizes = [0, 1, 2, 255, 256, 1023, 1024, 1025, 4000, 65535, 65536, 65537, 200_000, (1 << 20) - 1, 1 << 20, 3_000_001];

    private static byte[] Pattern(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A store-like dict: every kind of payload of every size, a slice of a larger buffer among them.</summary>
    private static PyDict Payloads()
    {
        var d = new PyDict();
        int k = 0;
        foreach (int n in Sizes)
        {
            var big = Pattern(n + 7, n);
            d[(long)k++] = new PyBytes(big.AsMemory(3, n)); // a slice: offsets into a larger array must be kept
            d[(long)k++] = new PyByteArray(Pattern(n, n + 1));
            var arr = NdArray.Wrap(Pattern(n, n + 2), n);
            d[(long)k++] = new PyList { arr, "text", new PyTuple((long)n, 3.5) };
            var ro = NdArray.Wrap(Pattern(n, n + 3), n);
            ArrayHints.Set(ro, ArrayHint.ReadOnly);
            d[(long)k++] = new PyDict { ["arr"] = new PyList { ro }, ["dt"] = "<u1" };
        }
        return d;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Payloads_of_every_size_give_the_same_bytes(int protocol)
    {
        var value = Payloads();
        var expected = PickleApi.Dump(value, protocol);
        Assert.Equal(expected, DumpToFile(value, protocol));
        Assert.Equal(expected, DumpToFile(value, protocol, offset: 4099));
    }

    /// <summary>Thousands of entries with payloads just above the in-place size: runs of more pieces than one pwritev takes.</summary>
    [Fact]
    public void Many_pieces_per_run_give_the_same_bytes()
    {
        var d = new PyDict();
        for (int i = 0; i < 5000; i++) d[(long)i] = new PyList { new PyBytes(Pattern(1024 + (i % 3), i)) };
        var expected = PickleApi.Dump(d, 5);
        var actual = DumpToFile(d, 5);
        Assert.Equal(expected, actual);
        var back = (PyDict)PickleApi.Load(actual);
        Assert.Equal(5000, back.Count);
        Assert.Equal(Pattern(1025, 4999), ((PyBytes)((PyList)back[4999L])[0]!).Data.ToArray());
    }

    [Fact]
    public void File_output_splits_runs_longer_than_the_vector_limit()
    {
        using var dir = new TempDir();
        string p = dir.File("v.bin");
        var pieces = new List<ReadOnlyMemory<byte>>();
        var expected = new MemoryStream();
        for (int i = 0; i < FileOutput.MaxVectors * 2 + 17; i++)
        {
            var b = Pattern(1 + (i % 50), i);
            pieces.Add(b);
            expected.Write(b);
        }
        using (var h = File.OpenHandle(p, FileMode.CreateNew, FileAccess.Write))
        {
            var output = new FileOutput(h, 5);
            output.Write("head"u8);
            output.Write(pieces, pieces.Sum(x => (long)x.Length));
            Assert.Equal(5 + 4 + expected.Length, output.Offset);
        }
        var bytes = File.ReadAllBytes(p);
        Assert.Equal("head"u8.ToArray(), bytes[5..9]);
        Assert.Equal(expected.ToArray(), bytes[9..]);
    }

    /// <summary>
    /// Objects shared between entries far apart (after thousands of new objects, so after the memo's batched inserts
    /// and the growth of its filter) are written once and referred to after, as CPython's memo does: loading keeps the sharing.
    /// </summary>
    [Fact]
    public void Shared_objects_far_apart_are_memoized()
    {
        var shared = new PyList { new PyBytes(Pattern(3000, 1)), "s" };
        var sharedBytes = new PyBytes(Pattern(2000, 2));
        var d = new PyDict();
        for (int i = 0; i < 30_000; i++)
        {
            var entry = new PyList { new PyBytes(Pattern(8, i)), new PyDict { ["x"] = (long)i } };
            if (i % 7000 == 3) { entry.Add(shared); entry.Add(sharedBytes); }
            d[(long)i] = entry;
        }
        var bytes = DumpToFile(d, 5);
        Assert.Equal(PickleApi.Dump(d, 5), bytes);
        var back = (PyDict)PickleApi.Load(bytes);
        var first = (PyList)back[3L];
        foreach (long i in new long[] { 7003, 14003, 21003, 28003 })
        {
            var e = (PyList)back[i];
            Assert.Same(first[2], e[2]);
            Assert.Same(first[3], e[3]);
        }
        Assert.NotSame(((PyList)back[0L])[1], ((PyList)back[1L])[1]);
    }

    [Fact]
    public void Identity_memo_agrees_with_a_reference_dictionary()
    {
        var memo = new IdentityMemo();
        var oracle = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var objects = new List<object>();
        var rng = new Random(12);
        for (int step = 0; step < 200_000; step++)
        {
            int op = rng.Next(10);
            if (op < 5 || objects.Count == 0)
            {
                var o = new object();
                objects.Add(o);
                Assert.False(memo.TryGetValue(o, out _));
                memo.Set(o, step);
                oracle[o] = step;
            }
            else if (op < 9)
            {
                var o = objects[rng.Next(objects.Count)];
                Assert.True(memo.TryGetValue(o, out int v));
                Assert.Equal(oracle[o], v);
            }
            else
            {
                var o = objects[rng.Next(objects.Count)];
                memo.Set(o, -step);
                oracle[o] = -step;
            }
        }
        Assert.Equal(oracle.Count, memo.Count);
        foreach (var (o, v) in oracle)
        {
            Assert.True(memo.TryGetValue(o, out int got));
            Assert.Equal(v, got);
        }
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temp_file()
    {
        using var dir = new TempDir();
        string p = dir.File("s.pkl");
        var old = PickleApi.Dump(new PyDict { [1L] = "old" });
        AtomicFile.Write(p, old);
        // Megabytes are written before the value that cannot be pickled is reached.
        var d = new PyDict();
        for (int i = 0; i < 8; i++) d[(long)i] = new PyBytes(Pattern(1 << 20, i));
        d[99L] = new PyList { new object() };
        Assert.Throws<ArgumentException>(() => AtomicFile.WritePositional(p, h => PickleFile.Dump(d, h), durable: false));
        Assert.Throws<IOException>(() => AtomicFile.WritePositional(p, h =>
        {
            PickleFile.Dump(new PyDict { [1L] = new PyBytes(Pattern(3 << 20, 5)) }, h);
            throw new IOException("disk full (simulated)");
        }));
        Assert.Equal(old, File.ReadAllBytes(p));
        Assert.Empty(Directory.GetFiles(dir.Path, ".s.pkl.tmp.*"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Positional_atomic_write_replaces_the_file(bool durable)
    {
        using var dir = new TempDir();
        string p = dir.File("r.pkl");
        AtomicFile.Write(p, new byte[10_000], durable);
        var value = Payloads();
        AtomicFile.WritePositional(p, h => PickleFile.Dump(value, h), durable);
        Assert.Equal(PickleApi.Dump(value), File.ReadAllBytes(p));
        AtomicFile.WritePositional(p, h => RandomAccess.Write(h, "ab"u8, 0), durable);
        Assert.Equal("ab"u8.ToArray(), File.ReadAllBytes(p)); // as long as what was written, not as the old file
        Assert.Throws<IOException>(() => AtomicFile.WritePositional(p, _ => { }, durable, overwrite: false));
        Assert.Empty(Directory.GetFiles(dir.Path, ".r.pkl.tmp.*"));
    }

    /// <summary>A typed store's push writes through the positional writer: the file is what the buffered writer makes of its dict.</summary>
    [Fact]
    public void A_store_push_writes_the_bytes_of_its_dict()
    {
        using var dir = new TempDir();
        string p = dir.File("c.pkl");
        var rng = new Random(3);
        var items = new List<KeyValuePair<StoreKey, NdArray>>();
        foreach (int rows in new[] { 0, 1, 40, 3000, 30_000, 200_000 })
        {
            var v = new long[rows * 3];
            for (int i = 0; i < v.Length; i++) v[i] = rng.Next(1000);
            items.Add(KeyValuePair.Create((StoreKey)(long)rows, NdArray.Wrap(v, rows, 3)));
        }
        using (var cs = new CompressedStorage(p, StoreOptions.Writable with { Durable = false }))
        {
            cs.Update(items);
            cs.Push();
        }
        var bytes = File.ReadAllBytes(p);
        var tree = PickleApi.Load(bytes);
        Assert.Equal(PickleApi.Dump(tree), bytes);
        using var back = new CompressedStorage(p);
        foreach (var (k, v) in items) Assert.Equal(v.Data.ToArray(), back[k].Data.ToArray());
    }
    /// <summary>A gather output that keeps what it is given, checks that no two runs are written at once, and can fail
    /// on a given run; each run takes a little while, so the pickler runs ahead of it.</summary>
    private sealed class SlowOutput(int failOnRun = -1) : IGatherOutput
    {
        private int _busy;
        public readonly MemoryStream Bytes = new();
        public int Runs;
        public bool Overlapped;

        public void Write(ReadOnlySpan<byte> data)
        {
            Enter();
            Bytes.Write(data);
            Leave();
        }

        public void Write(IReadOnlyList<ReadOnlyMemory<byte>> pieces, long totalBytes)
        {
            Enter();
            Thread.Sleep(2);
            if (Runs == failOnRun)
            {
                Leave();
                throw new IOException("disk full (test)");
            }
            long n = 0;
            foreach (var p in pieces)
            {
                Bytes.Write(p.Span);
                n += p.Length;
            }
            Assert.Equal(totalBytes, n);
            Runs++;
            Leave();
        }

        private void Enter()
        {
            if (Interlocked.Exchange(ref _busy, 1) != 0) Overlapped = true;
        }

        private void Leave() => Volatile.Write(ref _busy, 0);
    }

    private static PyDict ManyRuns(int n)
    {
        var d = new PyDict();
        for (long k = 0; k < n; k++) d[k] = new PyList { new PyBytes(Pattern(3000 + (int)k, (int)k)), NdArray.Wrap(Pattern(70_000, (int)k + 1), 70_000), "x" };
        return d;
    }

    /// <summary>
    /// The writer's buffers come from a pool shared by all threads and are given back when a dump ends: a dump after
    /// a larger one (whose bytes are still in the pooled arrays) and dumps on many threads at once write exactly their
    /// own bytes, to files, streams and gathered outputs alike.
    /// </summary>
    [Fact]
    public void Pooled_buffers_carry_nothing_from_one_dump_into_another()
    {
        var big = ManyRuns(60);
        var small = new PyDict { [1L] = new PyBytes(Pattern(5000, 9)), [2L] = "tail", [3L] = new PyList { 1L, 2L } };
        foreach (int protocol in new[] { 2, 5 })
        {
            var expectedSmall = PickleApi.Dump(small, protocol);
            Assert.Equal(PickleApi.Dump(big, protocol), DumpToFile(big, protocol));
            Assert.Equal(expectedSmall, DumpToFile(small, protocol));
            Assert.Equal(expectedSmall, DumpToStream(small, protocol));
            var output = new SlowOutput();
            PickleApi.Dump(small, output, protocol);
            Assert.Equal(expectedSmall, output.Bytes.ToArray());
        }

        var values = Enumerable.Range(0, 8).Select(i => (object)(i % 2 == 0 ? ManyRuns(10 + i) : Payloads())).ToArray();
        var expected = values.Select(v => PickleApi.Dump(v, 5)).ToArray();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            int j = i % values.Length;
            var got = i % 3 == 0 ? DumpToStream(values[j], 5) : DumpToFile(values[j], 5);
            if (!got.AsSpan().SequenceEqual(expected[j])) failures.Add($"dump {i} of value {j}");
        });
        Assert.Empty(failures);
    }

    [Fact]
    public void Runs_written_while_the_pickler_goes_on_give_the_buffered_writers_bytes()
    {
        var value = ManyRuns(200);
        foreach (int protocol in new[] { 2, 4, 5 })
        {
            var output = new SlowOutput();
            PickleApi.Dump(value, output, protocol);
            Assert.False(output.Overlapped, "two runs were written at once");
            Assert.True(output.Runs > 3);
            Assert.Equal(PickleApi.Dump(value, protocol), output.Bytes.ToArray());
        }
    }

    [Fact]
    public void A_run_that_fails_fails_the_dump_and_nothing_is_written_after_it_returns()
    {
        var output = new SlowOutput(failOnRun: 3);
        var e = Assert.Throws<IOException>(() => PickleApi.Dump(ManyRuns(200), output, 5));
        Assert.Contains("disk full", e.Message);
        long length = output.Bytes.Length;
        Thread.Sleep(50);
        Assert.Equal(length, output.Bytes.Length);
        Assert.False(output.Overlapped);
    }

    [Fact]
    public void A_value_that_cannot_be_pickled_fails_the_dump_only_after_the_run_in_flight_is_written()
    {
        var value = ManyRuns(200);
        value[999L] = new PyList { new Uri("http://example.org/") }; // not of the value model: fails after many runs
        var output = new SlowOutput();
        var e = Assert.Throws<ArgumentException>(() => PickleApi.Dump(value, output, 5));
        Assert.Contains("System.Uri", e.Message);
        int runs = output.Runs;
        long length = output.Bytes.Length;
        Thread.Sleep(50);
        Assert.Equal(runs, output.Runs);
        Assert.Equal(length, output.Bytes.Length);
        Assert.True(runs > 3);
    }
}
