using System.Diagnostics;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>Runs <c>syconn-store</c> in-process or as the built program, capturing what it writes.</summary>
public static class CliRun
{
    /// <summary>The exit code, stdout and stderr of <c>syconn-store ARGS</c> run through <see cref="SyConn.Backend.Cli.Cli.Run"/>.</summary>
    public static (int Code, string Out, string Err) InProcess(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>The built CLI: the CLI project's Release output, else the copy next to the tests.</summary>
    public static string Dll
    {
        get
        {
            var built = Shared.RepoRoot is { } root ? Path.Combine(root, "src", "SyConn.Backend.Cli", "bin", "Release", "net10.0", "syconn-store.dll") : null;
            return built is not null && File.Exists(built) ? built : Path.Combine(AppContext.BaseDirectory, "syconn-store.dll");
        }
    }

    /// <summary>The exit code, stdout and stderr of <c>dotnet syconn-store.dll ARGS</c> run as a child process (at most 10 minutes).</summary>
    public static (int Code, string Out, string Err) AsProcess(params string[] args) => AsProcess(TimeSpan.FromMinutes(10), args);

    /// <summary>The same, failing the test when the process runs longer than <paramref name="timeout"/>.</summary>
    public static (int Code, string Out, string Err) AsProcess(TimeSpan timeout, params string[] args)
    {
        var dll = Dll;
        Assert.True(File.Exists(dll), $"the built CLI is missing: {dll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"syconn-store {string.Join(' ', args)} did not finish in {timeout.TotalSeconds} s");
        }
        return (p.ExitCode, output, err.Result);
    }
}
