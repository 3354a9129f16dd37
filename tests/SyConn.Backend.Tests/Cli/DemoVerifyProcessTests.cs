using System.Text.Json.Nodes;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>The built CLI as a user runs it: demo, then verify, info and ls on what it wrote, then verify on a damaged copy.</summary>
public class DemoVerifyProcessTests
{
    [Fact]
    public void Demo_then_verify_info_and_ls_agree_and_a_truncated_store_is_named()
    {
        using var tmp = new TempDir();
        var wd = Path.Combine(tmp.Path, "wd");
        var (code, _, e) = CliRun.AsProcess("demo", wd, "--objects", "40");
        Assert.True(code == 0, e);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(wd, "syconn-demo.json")))!;
        var stores = manifest["stores"]!.AsArray();

        (code, var o, e) = CliRun.AsProcess("verify", wd, "--quiet");
        Assert.True(code == 0, e);
        Assert.Matches(@"^\d+ stores, \d+ entries verified, 0 corrupt$", o.Trim().Split('\n')[^1]);

        // ls --json lists every store the demo says it wrote, with its class and entry count.
        (code, o, e) = CliRun.AsProcess("ls", wd, "--json");
        Assert.True(code == 0, e);
        var listed = JsonNode.Parse(o)!["stores"]!.AsArray().ToDictionary(s => (string)s!["path"]!, s => s!);
        int compared = 0;
        foreach (var s in stores)
        {
            var path = (string)s!["path"]!;
            if (!path.EndsWith(".pkl", StringComparison.Ordinal)) continue;
            Assert.True(listed.TryGetValue(path, out var l), $"ls does not list {path}");
            Assert.Equal((string)s["class"]!, (string)l!["class"]!);
            Assert.Equal((int)s["entries"]!, (int)l["entries"]!);
            compared++;
        }
        Assert.True(compared >= 4, $"only {compared} pickle stores compared");

        // info --json of one attribute dict: its class and its keys, as keys lists them.
        var ad = stores.First(s => ((string)s!["path"]!).EndsWith("attr_dict.pkl", StringComparison.Ordinal))!;
        var adPath = Path.Combine(wd, (string)ad["path"]!);
        (code, o, e) = CliRun.AsProcess("info", adPath, "--json");
        Assert.True(code == 0, e);
        var info = JsonNode.Parse(o)!;
        Assert.Equal("AttributeDict", (string?)info["class"]);
        Assert.Equal((int)ad["entries"]!, info["entries"]!.AsArray().Count);
        Assert.Equal(CliRun.InProcess("keys", adPath).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), info["entries"]!.AsArray().Select(k => (string)k!));

        // A copy with one store cut to half its bytes: verify exits 1 and names that file.
        var copy = Path.Combine(tmp.Path, "copy");
        foreach (var f in Directory.EnumerateFiles(wd, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(copy, Path.GetRelativePath(wd, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        var mesh = stores.Select(s => (string)s!["path"]!).First(p => p.EndsWith("mesh.pkl", StringComparison.Ordinal));
        var victim = Path.Combine(copy, mesh);
        var bytes = File.ReadAllBytes(victim);
        File.WriteAllBytes(victim, bytes[..(bytes.Length / 2)]);
        (code, o, e) = CliRun.AsProcess("verify", copy, "--quiet");
        Assert.Equal(1, code);
        Assert.Contains(mesh, o + e, StringComparison.Ordinal);
        Assert.Matches(@"^\d+ stores, \d+ entries verified, 1 corrupt$", o.Trim().Split('\n')[^1]);
    }
}
