using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Export;

/// <summary>Runs <c>syconn-store</c> in-process.</summary>
internal static class ExportCli
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    public static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Runs and asserts success; returns stdout and stderr.</summary>
    public static (string Out, string Err) Ok(params string[] args)
    {
        var (code, o, e) = Run(args);
        Assert.True(code == 0, $"syconn-store {string.Join(' ', args)} exited {code}:\n{e}");
        return (o, e);
    }

    /// <summary>Asserts exit code <paramref name="expected"/> with one clean error line; returns it.</summary>
    public static string Fails(int expected, params string[] args)
    {
        var (code, o, e) = Run(args);
        Assert.True(code == expected, $"syconn-store {string.Join(' ', args)}: expected exit {expected}, got {code}:\n{e}");
        Assert.Equal("", o);
        Assert.StartsWith("syconn-store: ", e);
        var lines = Lines(e).Where(l => !l.StartsWith("syconn-store: see ", StringComparison.Ordinal)).ToArray();
        Assert.True(lines.Length == 1, $"expected one error line, got:\n{e}");
        Assert.DoesNotContain("   at ", e, StringComparison.Ordinal);
        return lines[0];
    }
}

/// <summary>
/// Debian's <c>python3-meshio</c> (through <c>/usr/bin/python3</c>) reading our PLY and OBJ files: what it sees,
/// as JSON, per file.
/// </summary>
internal static class Meshio
{
    private const string Script = """
        import json, sys
        import numpy as np
        import meshio
        out = []
        for f in sys.argv[1:]:
            m = meshio.read(f)
            pts = np.asarray(m.points)
            n = pts.shape[0] if pts.ndim == 2 else 0
            cols = pts.shape[1] if pts.ndim == 2 else 0
            cells = {}
            tris = []
            for c in m.cells:
                cells[c.type] = cells.get(c.type, 0) + len(c.data)
                if c.type == "triangle":
                    tris.extend(int(i) for i in np.asarray(c.data).ravel())
            out.append({
                "file": f,
                "points": int(n),
                "columns": int(cols),
                "cells": cells,
                "xyz": [float(x) for x in pts[:, :3].ravel()] if n else [],
                "extra": [float(x) for x in pts[:, 3:].ravel()] if n else [],
                "triangles": tris,
                "point_data": {k: [float(x) for x in np.asarray(v).ravel()] for k, v in m.point_data.items()},
            })
        print(json.dumps(out))
        """;

    /// <summary>Skips (fails under CI) unless meshio is importable by Debian's interpreter.</summary>
    public static void Require() => Infrastructure.Python.Require("numpy", "meshio");

    /// <summary>What meshio reads from each file, keyed by path.</summary>
    public static Dictionary<string, JsonObject> Read(IEnumerable<string> files)
    {
        Require();
        var list = files.ToList();
        var json = JsonNode.Parse(Infrastructure.Python.RunChecked(Script, list))!.AsArray();
        return json.ToDictionary(j => (string)j!["file"]!, j => j!.AsObject());
    }

    public static double[] Doubles(JsonNode? a) => a!.AsArray().Select(x => (double)x!).ToArray();

    public static long[] Longs(JsonNode? a) => a!.AsArray().Select(x => (long)x!).ToArray();

    /// <summary>
    /// A PLY <c>uchar</c> property as bytes. meshio 7.0's binary PLY reader maps <c>uchar</c> to numpy's <c>i1</c>
    /// (signed), so 242 comes back as -14: the same 8 bits, taken here modulo 256.
    /// </summary>
    public static byte[] Bytes(JsonNode? a) => Doubles(a).Select(x =>
    {
        Assert.True(x == Math.Floor(x) && x is >= -128 and <= 255, $"{x} is not an 8-bit value");
        return (byte)(((long)x + 256) % 256);
    }).ToArray();
}

/// <summary>
/// The Khronos glTF validator (npm's <c>gltf-validator</c>, installed by scripts/test.sh into tests/node_modules)
/// run with node: a tiny script calls <c>validateBytes</c> on each file and prints the report's counts as JSON.
/// </summary>
internal static class GltfValidator
{
    private const string Script = """
        const fs = require('fs');
        const validator = require(process.argv[2]);
        (async () => {
          const out = [];
          for (const f of process.argv.slice(3)) {
            const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(f)), { uri: f, maxIssues: 1000 });
            out.push({
              file: f,
              errors: report.issues.numErrors,
              warnings: report.issues.numWarnings,
              messages: report.issues.messages.filter(m => m.severity === 0).map(m => m.code + ' ' + (m.pointer || '') + ': ' + m.message),
              vertices: report.info ? report.info.totalVertexCount : null,
              triangles: report.info ? report.info.totalTriangleCount : null,
            });
          }
          console.log(JSON.stringify(out));
        })().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
        """;

    /// <summary>The validator package: <c>SYCONN_GLTF_VALIDATOR</c>, else tests/node_modules/gltf-validator in the repository.</summary>
    public static string? ModuleDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("SYCONN_GLTF_VALIDATOR");
            if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
            return Shared.RepoRoot is null ? null : Path.Combine(Shared.RepoRoot, "tests", "node_modules", "gltf-validator");
        }
    }

    private static string? Node()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin"))
        {
            var p = Path.Combine(dir, "node");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Skips (fails under CI) unless node and the validator package are there.</summary>
    public static void Require()
    {
        Requires.That(Node() is not null, "node (apt-get install nodejs)");
        var m = ModuleDir;
        Requires.That(m is not null && File.Exists(Path.Combine(m, "package.json")),
            $"the npm package gltf-validator in {m ?? "tests/node_modules"} (scripts/test.sh installs it with npm install --prefix tests --no-save gltf-validator@VERSION)");
    }

    /// <summary>The validator's report per file, keyed by path.</summary>
    public static Dictionary<string, JsonObject> Validate(IEnumerable<string> files)
    {
        Require();
        using var dir = new TempDir();
        var script = dir.File("validate.js");
        File.WriteAllText(script, Script);
        var psi = new ProcessStartInfo(Node()!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(ModuleDir!);
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            Assert.Fail("the glTF validator did not finish within 120 s");
        }
        Assert.True(p.ExitCode == 0, $"node exited {p.ExitCode}:\n{se.Result}");
        var json = JsonNode.Parse(so.Result)!.AsArray();
        return json.ToDictionary(j => (string)j!["file"]!, j => j!.AsObject());
    }
}

/// <summary>An SWC reader written for the tests, line by line, independent of the writer.</summary>
internal static class SwcText
{
    public sealed record Sample(long N, int T, double X, double Y, double Z, double R, long P);

    /// <summary>Parses SWC text and checks its structure: 7 fields a line, unique ids, every parent (-1 or an id) before its children.</summary>
    public static List<Sample> ParseAndCheck(string text, string what)
    {
        var samples = new List<Sample>();
        var seen = new HashSet<long>();
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(f.Length == 7, $"{what}:{lineNo}: {f.Length} fields in '{line}'");
            var inv = CultureInfo.InvariantCulture;
            Assert.True(long.TryParse(f[0], NumberStyles.Integer, inv, out var n), $"{what}:{lineNo}: n '{f[0]}'");
            Assert.True(int.TryParse(f[1], NumberStyles.Integer, inv, out var t), $"{what}:{lineNo}: T '{f[1]}'");
            var xyzr = new double[4];
            for (int i = 0; i < 4; i++)
                Assert.True(double.TryParse(f[2 + i], NumberStyles.Float, inv, out xyzr[i]) && double.IsFinite(xyzr[i]), $"{what}:{lineNo}: '{f[2 + i]}'");
            Assert.True(long.TryParse(f[6], NumberStyles.Integer, inv, out var p), $"{what}:{lineNo}: P '{f[6]}'");
            Assert.True(n > 0 && seen.Add(n), $"{what}:{lineNo}: sample id {n} not positive or repeated");
            Assert.True(p == -1 || (p != n && seen.Contains(p)), $"{what}:{lineNo}: parent {p} of {n} does not come before it");
            Assert.True(xyzr[3] >= 0, $"{what}:{lineNo}: negative radius");
            samples.Add(new Sample(n, t, xyzr[0], xyzr[1], xyzr[2], xyzr[3], p));
        }
        return samples;
    }

    /// <summary>Connected components of an undirected graph, by union-find.</summary>
    public static int Components(int n, IReadOnlyList<(int A, int B)> edges)
    {
        var parent = Enumerable.Range(0, n).ToArray();
        int Find(int x) { while (parent[x] != x) x = parent[x] = parent[parent[x]]; return x; }
        int c = n;
        foreach (var (a, b) in edges)
        {
            int ra = Find(a), rb = Find(b);
            if (ra != rb) { parent[ra] = rb; c--; }
        }
        return c;
    }
}
