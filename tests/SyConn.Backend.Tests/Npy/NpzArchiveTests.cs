using System.IO.Compression;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Npy;

/// <summary>The npz writer's own zip records: many members (ZIP64 end records), both levels, read by numpy and by us.</summary>
public class NpzArchiveTests
{
    [Fact]
    public void Members_of_a_file_read_in_order_are_read_ahead_once_and_equal_the_streamed_ones()
    {
        using var dir = new TempDir();
        var path = dir.File("ahead.npz");
        const int n = 400;
        var arrays = Enumerable.Range(0, n).Select(i => NdArray.Create(Enumerable.Range(0, 30 + i).Select(j => (long)(i * 1000 + j)).ToArray())).ToArray();
        NpzFile.Write(path, arrays.Select((a, i) => new KeyValuePair<string, NdArray>(i.ToString(System.Globalization.CultureInfo.InvariantCulture), a)));
        using var streamed = new NpzReader(new MemoryStream(File.ReadAllBytes(path)), path);
        Assert.Equal((0, true), streamed.Ahead); // a stream's archive is not read ahead
        using var r = NpzFile.OpenRead(path);
        var first = new NdArray[n];
        bool sawAhead = false;
        for (int i = 0; i < n; i++)
        {
            string k = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            first[i] = r.Read(k);
            Assert.Equal(arrays[i].ToArray<long>(), first[i].ToArray<long>());
            Assert.Equal(streamed.Read(k).ToArray<long>(), first[i].ToArray<long>());
            if (i == 40)
            {
                SpinWait.SpinUntil(() => r.Ahead.Idle, 10_000);
                sawAhead = r.Ahead.Held > 0;
            }
        }
        Assert.True(sawAhead || Environment.ProcessorCount < 2, "after 40 reads in order, members that follow are read ahead");
        // Each read hands out its own array: changing one leaves the next read of that key alone.
        first[100].Data.Span.Fill(0xff);
        Assert.Equal(arrays[100].ToArray<long>(), r.Read("100").ToArray<long>());
        Assert.Equal(arrays[399].ToArray<long>(), r.Read("399.npy").ToArray<long>());
    }

    [SkippableFact]
    public void More_than_65535_members_need_zip64_end_records_and_numpy_reads_them()
    {
        PyRun.Require("numpy");
        using var dir = new TempDir();
        var path = dir.File("many.npz");
        const int n = 70_000;
        NpzFile.Write(path, Enumerable.Range(0, n).Select(i => new KeyValuePair<string, NdArray>(i.ToString(System.Globalization.CultureInfo.InvariantCulture), NdArray.Create(new long[] { i, -i }))), compress: false);
        using (var r = NpzFile.OpenRead(path))
        {
            Assert.Equal(n, r.Keys.Count);
            Assert.Equal(new long[] { 69_999, -69_999 }, r.Read("69999").ToArray<long>());
        }
        var o = PyRun.RunChecked("""
import sys, numpy as np
z = np.load(sys.argv[1])
print(len(z.files), z['69999'].tolist(), z['0'].dtype.str)
""", [path]);
        Assert.Equal("70000 [69999, -69999] <i8", o.Trim());
    }

    [SkippableTheory]
    [InlineData(CompressionLevel.Optimal)]
    [InlineData(CompressionLevel.Fastest)]
    public void Deflated_members_in_parallel_batches_read_back_in_order(CompressionLevel level)
    {
        PyRun.Require("numpy");
        using var dir = new TempDir();
        var path = dir.File("batch.npz");
        var rng = new Random(3);
        var arrays = Enumerable.Range(0, 200).Select(i => new KeyValuePair<string, NdArray>($"{i - 50}",
            NdArray.Create(Enumerable.Range(0, rng.Next(0, 300) * 3).Select(_ => (long)rng.Next(1000)).ToArray()).Reshape(-1, 3))).ToList();
        using (var fs = File.Create(path)) Npz.Write(fs, arrays, compress: true, level);
        var back = NpzFile.ReadAll(path);
        Assert.Equal(arrays.Select(a => a.Key), back.Keys);
        foreach (var (k, v) in arrays) Assert.True(v.Equals(back[k]), k);
        var o = PyRun.RunChecked("""
import sys, zipfile, numpy as np, hashlib
z = np.load(sys.argv[1])
methods = {i.compress_type for i in zipfile.ZipFile(sys.argv[1]).infolist()}
print(len(z.files), z.files[0], z.files[-1], sorted(methods), sum(int(z[k].sum()) for k in z.files))
""", [path]);
        long total = arrays.Sum(a => a.Value.ToArray<long>().Sum());
        Assert.Equal($"200 -50 149 [8] {total}", o.Trim());
    }
}
