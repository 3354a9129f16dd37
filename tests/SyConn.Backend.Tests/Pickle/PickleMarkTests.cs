using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using PickleApi = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// The pickler marks the objects it writes with the stamp of its run instead of keeping them all in a table. Runs that
/// write the same objects at the same time, or one after the other, must each write what a lone run writes: shared
/// objects once and then fetched from the memo, a dict that holds itself without end.
/// </summary>
public class PickleMarkTests
{
    private static PyDict SharedGraph(int n)
    {
        var shared = new PyList { 1L, "x", NdArray.Create(new long[] { 1, 2, 3 }) };
        var array = NdArray.Create(new double[] { 0.5, 1.5 });
        var scalar = NpScalar.UInt64(7);
        var root = new PyDict();
        for (long k = 0; k < n; k++)
            root[k] = new PyDict { ["s"] = shared, ["a"] = array, ["n"] = scalar, ["own"] = new PyList { k, new PyTuple(k, "t") }, ["b"] = new PyBytes(new byte[] { (byte)k, 1, 2 }) };
        var self = new PyDict { ["n"] = 1L };
        self["me"] = self;
        root[-1L] = self;
        return root;
    }

    [Fact]
    public void Shared_objects_are_written_once_and_fetched_after()
    {
        var value = SharedGraph(50);
        var bytes = PickleApi.Dump(value, 5);
        var back = (PyDict)PickleApi.Load(bytes);
        Assert.Same(((PyDict)back[0L])["s"], ((PyDict)back[49L])["s"]);
        Assert.Same(((PyDict)back[0L])["n"], ((PyDict)back[1L])["n"]);
        var self = (PyDict)back[-1L];
        Assert.Same(self, self["me"]);
        Assert.Equal(bytes, PickleApi.Dump(value, 5)); // a second run over the marks of the first
        Assert.Equal(bytes, PickleApi.Dump(back, 5)); // and over objects never marked
    }

    [Theory]
    [InlineData(4)]
    [InlineData(80)] // more runs at once than there are stamps: the rest keep every object in their tables
    public void Runs_writing_the_same_objects_at_once_each_write_what_a_lone_run_writes(int threads)
    {
        var value = SharedGraph(300);
        var expected = new Dictionary<int, byte[]>();
        foreach (int protocol in new[] { 2, 4, 5 }) expected[protocol] = PickleApi.Dump(value, protocol);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < 20; i++)
            {
                int protocol = new[] { 2, 4, 5 }[(t + i) % 3];
                if (!PickleApi.Dump(value, protocol).AsSpan().SequenceEqual(expected[protocol]))
                    failures.Add($"thread {t}, run {i}, protocol {protocol}");
            }
        })).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        Assert.Empty(failures);
    }
}
