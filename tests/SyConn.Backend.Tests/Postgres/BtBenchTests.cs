using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Postgres;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Storage;

namespace SyConn.Backend.Tests.Postgres;

/// <summary><c>syconn-store bench --backend bt</c> against a private server (<see cref="LocalPostgres"/>).</summary>
public sealed class BtBenchTests
{
    [SkippableFact]
    public void Bench_w8_on_bt_prints_one_line_and_the_parallel_run_loses_no_update()
    {
        Requires.That(LocalPostgres.BinariesAvailable, "the PostgreSQL server binaries (apt-get install postgresql)");
        using var dir = new TempDir();
        string root;
        using (var server = LocalPostgres.Start())
        {
            root = server.RootDir;
            Assert.True(Directory.Exists(server.DataDir));
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { ChildProcess.CliDll, "bench", "w8", "--backend", "bt", "--scale", "0.01", "--reps", "1", "--out", dir.Path })
                psi.ArgumentList.Add(a);
            psi.Environment[BtBackend.EnvironmentVariable] = server.ConnectionString;
            psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail($"bench did not finish within 120 s; stderr: {stderr.Result}");
            }
            Assert.True(p.ExitCode == 0, $"bench failed (exit {p.ExitCode}): {stderr.Result}");

            var line = JsonNode.Parse(stdout.Result.Trim())!;
            Assert.Equal("w8", (string)line["workload"]!);
            Assert.Equal("bt", (string)line["backend"]!);
            foreach (var phase in new[] { "seq_f100_locked_total", "seq_f100_unlocked_total", "seq_f1_locked_total", "seq_f1_unlocked_total" })
                Assert.True((double)line["timings"]![phase]!["median"]! > 0, phase);
            var run = line["parallel"]!["locked"]!.AsArray().Single()!;
            Assert.Equal((long)run["expected"]!, (long)run["final_counter"]!);
            Assert.Equal(0L, (long)run["lost_updates"]!);
            Assert.Equal(20L, (long)run["expected"]!); // 4 processes x 500 x 0.01
            var env = line["env"]!["bt_server"]!;
            Assert.Equal("on", (string)env["fsync"]!);
            Assert.Equal("unix socket", (string)env["transport"]!);
        }
        Assert.False(Directory.Exists(root), "the server's folder is deleted when it stops");
    }

    [Fact]
    public void A_workload_without_a_bt_variant_is_a_usage_error()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, SyConn.Backend.Cli.Cli.Run(["bench", "w3", "--backend", "bt"], o, e));
        Assert.Contains("--backend bt", e.ToString());
        Assert.Equal("", o.ToString());
    }
}
