using System.Text.Json.Nodes;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Bench;

/// <summary>
/// The JSON line of every workload with floors, at a tiny scale: every phase is mapped to a floor measured in the
/// same run (or explicitly to none), has a ratio to it, and the peak memory of reading the store in a child process
/// is reported beside the bytes it read.
/// </summary>
public class BenchLineTests
{
    private static JsonObject Bench(string workload, string scale, string dir)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["bench", workload, "--scale", scale, "--reps", "1", "--out", dir], o, e);
        Assert.True(code == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return JsonNode.Parse(lines[0])!.AsObject();
    }

    [Theory]
    [InlineData("w1", "0.002", true)]
    [InlineData("w2", "0.0005", false)]
    [InlineData("w3", "0.004", true)]
    [InlineData("w4", "0.002", true)]
    [InlineData("w5", "0.01", true)]
    [InlineData("w7", "0.001", true)]
    public void Every_phase_has_a_floor_and_a_ratio_and_the_peak_memory_is_reported(string workload, string scale, bool hasRaw)
    {
        using var dir = new TempDir();
        var line = Bench(workload, scale, dir.Path);
        Assert.Equal(workload, (string)line["workload"]!);
        AssertFloors(workload, line);
        Assert.True((long)line["peak_rss_bytes"]! > 0);
        var memory = line["memory"]!.AsObject();
        Assert.Equal((long)line["peak_rss_bytes"]!, (long)memory["peak_rss_bytes"]!);
        Assert.True((long)memory["peak_rss_bytes"]! >= (long)memory["rss_at_start_bytes"]!);
        Assert.True((long)memory["file_bytes"]! > 0);
        if (hasRaw)
        {
            // The child read back every byte the workload wrote.
            Assert.Equal((long)line["sizes"]!["raw_bytes"]!, (long)memory["values_bytes"]!);
            Assert.True((double)memory["peak_over_raw"]! > 0);
        }
    }

    [Fact]
    public void W6_maps_its_builds_to_the_file_write_and_its_queries_to_no_floor()
    {
        using var dir = new TempDir();
        var line = Bench("w6", "0.0001", dir.Path);
        AssertFloors("w6", line);
        Assert.Equal("write_fsync", (string)line["floor_map"]!["build"]!);
        Assert.Null(line["floor_map"]!["get_attributes_1000"]);
    }

    [Fact]
    public void W8_maps_each_cycle_to_reading_and_writing_its_store_file()
    {
        using var dir = new TempDir();
        var line = Bench("w8", "0.005", dir.Path);
        AssertFloors("w8", line);
        Assert.Equal("10*f100file_read_fresh+10*f100file_write_fsync", (string)line["floor_map"]!["seq_f100_locked_total"]!);
        Assert.Equal("10*f1file_read_fresh+10*f1file_write_nosync", (string)line["floor_map"]!["seq_f1_unlocked_total_nosync"]!);
        Assert.Equal("10*f1file_read_fresh+10*f1file_write_nosync", (string)line["floor_map"]!["seq_f1_locked_total_deferred"]!);
        foreach (var key in new[] { "locked", "locked_nosync", "locked_deferred" })
        {
            Assert.Equal(0, (long)line["parallel"]![key]![0]!["lost_updates"]!);
            Assert.Equal((long)line["parallel"]![key]![0]!["expected"]!, (long)line["parallel"]![key]![0]!["final_counter"]!);
        }
    }

    private static void AssertFloors(string workload, JsonObject line)
    {
        var timings = line["timings"]!.AsObject();
        var map = line["floor_map"]!.AsObject();
        var vs = line["vs_floor"]!.AsObject();
        var floors = line["floors"]!["timings"]!.AsObject();
        Assert.NotEmpty(timings);
        Assert.Equal(timings.Select(kv => kv.Key).Order(), map.Select(kv => kv.Key).Order());
        Assert.Equal(timings.Select(kv => kv.Key).Order(), vs.Select(kv => kv.Key).Order());
        int mapped = 0;
        foreach (var (phase, floorName) in map)
        {
            if (floorName is null)
            {
                Assert.Null(vs[phase]);
                continue;
            }
            mapped++;
            double floorBest = 0;
            foreach (var term in ((string)floorName!).Split('+'))
            {
                // "name" or "N*name" (a floor paid N times, once per cycle)
                var pieces = term.Split('*');
                string part = pieces[^1];
                double times = pieces.Length == 2 ? double.Parse(pieces[0], System.Globalization.CultureInfo.InvariantCulture) : 1;
                Assert.True(floors.ContainsKey(part), $"{workload}: {phase} maps to {part}, which is not among the floors");
                floorBest += times * (double)floors[part]!["best"]!;
            }
            double ratio = (double)vs[phase]!;
            Assert.True(ratio > 0, $"{workload}: {phase} ratio {ratio}");
            // The ratio is the phase's best over its floor's best (rounded to 3 decimals).
            double expected = (double)timings[phase]!["best"]! / floorBest;
            Assert.True(Math.Abs(ratio - expected) <= 0.0005 + 1e-9, $"{workload}: {phase} ratio {ratio}, recomputed {expected}");
        }
        Assert.True(mapped > 0);
        // Writing phases map to the file write, with fsync for the default and without for _nosync.
        foreach (var (phase, floorName) in map)
        {
            if (phase.EndsWith("push_nosync", StringComparison.Ordinal)) Assert.EndsWith("write_nosync", (string)floorName!);
            else if (phase.EndsWith("push", StringComparison.Ordinal)) Assert.EndsWith("write_fsync", (string)floorName!);
        }
    }

    [Fact]
    public void The_read_child_rejects_an_unknown_store_kind()
    {
        using var dir = new TempDir();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["bench", "_read", "nonsense", Path.Combine(dir.Path, "x.pkl")], new StringWriter(), e);
        Assert.Equal(2, code);
        Assert.Contains("nonsense", e.ToString());
    }
}
