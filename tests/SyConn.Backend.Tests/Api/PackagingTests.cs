using System.Diagnostics;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

/// <summary><c>dotnet pack</c> of the solution's Release build, and the CLI installed from the local package as a .NET tool.</summary>
public class PackagingTests
{
    private static (int Code, string Output) Dotnet(string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(10)), $"dotnet {string.Join(' ', args)} did not finish");
        return (p.ExitCode, o + err.Result);
    }

    [SkippableFact]
    public void Pack_gives_the_library_backend_and_tool_packages_and_the_installed_tool_works()
    {
        var root = Shared.RepoRoot;
        Requires.That(root is not null && File.Exists(Path.Combine(root, "SyConn.Backend.slnx")), "the repository root (SyConn.Backend.slnx)");
        Requires.That(File.Exists(Path.Combine(root!, "src", "SyConn.Backend.Cli", "bin", "Release", "net10.0", "syconn-store.dll")), "a Release build of the CLI (scripts/test.sh builds it)");
        using var tmp = new TempDir();
        var packages = Path.Combine(tmp.Path, "packages");
        var (code, output) = Dotnet(root!, "pack", "SyConn.Backend.slnx", "-c", "Release", "--no-build", "-o", packages, "-nologo");
        Assert.True(code == 0, output);
        var names = Directory.GetFiles(packages).Select(Path.GetFileName).ToList();
        foreach (var id in new[] { "SyConn.Backend", "SyConn.Backend.Postgres", "SyConn.Backend.Cli" })
        {
            Assert.Contains(names, n => n!.StartsWith(id + ".", StringComparison.Ordinal) && char.IsDigit(n[id.Length + 1]) && n.EndsWith(".nupkg", StringComparison.Ordinal));
            Assert.Contains(names, n => n!.StartsWith(id + ".", StringComparison.Ordinal) && char.IsDigit(n[id.Length + 1]) && n.EndsWith(".snupkg", StringComparison.Ordinal));
        }
        var tool = names.Single(n => n!.StartsWith("SyConn.Backend.Cli.", StringComparison.Ordinal) && n.EndsWith(".nupkg", StringComparison.Ordinal))!;
        var version = tool["SyConn.Backend.Cli.".Length..^".nupkg".Length];

        var toolPath = Path.Combine(tmp.Path, "tool");
        (code, output) = Dotnet(tmp.Path, "tool", "install", "SyConn.Backend.Cli", "--tool-path", toolPath, "--add-source", packages, "--version", version);
        Assert.True(code == 0, output);
        var exe = Path.Combine(toolPath, "syconn-store");
        Assert.True(File.Exists(exe), $"no syconn-store in {toolPath}: {output}");

        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "demo", Path.Combine(tmp.Path, "wd"), "--objects", "5", "--json" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)));
        Assert.True(p.ExitCode == 0, err.Result);
        Assert.Contains("\"stores\"", o, StringComparison.Ordinal);
    }
}
