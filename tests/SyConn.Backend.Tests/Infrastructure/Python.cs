using System.Diagnostics;
using System.Text;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// Runs Debian's <c>/usr/bin/python3</c> (never the first python3 on PATH) for interop tests.
/// </summary>
public static class Python
{
    /// <summary>The interpreter interop tests use.</summary>
    public const string Interpreter = "/usr/bin/python3";

    private static readonly Dictionary<string, bool> ModuleCache = new();

    /// <summary>Skips (fails under CI) unless the interpreter and all <paramref name="modules"/> are importable.</summary>
    public static void Require(params string[] modules)
    {
        Requires.That(File.Exists(Interpreter), $"{Interpreter} (apt-get install python3)");
        foreach (var m in modules)
        {
            bool ok;
            lock (ModuleCache)
            {
                if (!ModuleCache.TryGetValue(m, out ok))
                {
                    var r = Run($"import {m}", timeoutSeconds: 60);
                    ok = r.ExitCode == 0;
                    ModuleCache[m] = ok;
                }
            }
            Requires.That(ok, $"python module '{m}' for {Interpreter} (apt-get install python3-{m})");
        }
    }

    /// <summary>Result of a Python run.</summary>
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <paramref name="script"/> with <paramref name="args"/>; stdin optional.</summary>
    public static Result Run(string script, IEnumerable<string>? args = null, string? stdin = null, int timeoutSeconds = 300, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args ?? []) psi.ArgumentList.Add(a);
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        psi.Environment.Remove("PYTHONPATH");
        psi.Environment.Remove("PYTHONHOME");
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"python did not finish within {timeoutSeconds}s");
        }
        return new Result(p.ExitCode, so.Result, se.Result);
    }

    /// <summary>Runs a script that must succeed; returns its stdout.</summary>
    public static string RunChecked(string script, IEnumerable<string>? args = null, string? stdin = null, int timeoutSeconds = 300)
    {
        var r = Run(script, args, stdin, timeoutSeconds);
        Assert.True(r.ExitCode == 0, $"python failed (exit {r.ExitCode}):\n{r.Stderr}\n{r.Stdout}");
        return r.Stdout;
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>The folder.</summary>
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "syconn-tests-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Creates the folder.</summary>
    public TempDir() => Directory.CreateDirectory(Path);

    /// <summary>A path inside the folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc/>
    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
