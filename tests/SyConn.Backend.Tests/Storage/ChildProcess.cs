using System.Diagnostics;
using System.Text;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>An interactive child process (Python or our CLI) with line-based stdin/stdout.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _stderr = new();

    private ChildProcess(ProcessStartInfo psi)
    {
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.StandardOutputEncoding = Encoding.UTF8;
        psi.StandardErrorEncoding = Encoding.UTF8;
        _p = new Process { StartInfo = psi };
        _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _p.Start();
        _p.BeginErrorReadLine();
    }

    public int Pid => _p.Id;

    public Process Process => _p;

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The path of our CLI next to the test assembly.</summary>
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "syconn-store.dll");

    public static ChildProcess Python(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Infrastructure.Python.Interpreter);
        psi.ArgumentList.Add("-u");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        psi.Environment.Remove("PYTHONPATH");
        psi.Environment.Remove("PYTHONHOME");
        return new ChildProcess(psi);
    }

    public static ChildProcess Cli(params string[] args)
    {
        Assert.True(File.Exists(CliDll), $"syconn-store.dll not found next to the tests: {CliDll}");
        var psi = new ProcessStartInfo("dotnet");
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        return new ChildProcess(psi);
    }

    /// <summary>Reads one stdout line; fails the test on EOF or after <paramref name="timeoutSeconds"/>.</summary>
    public string ReadLine(int timeoutSeconds = 60)
    {
        var t = _p.StandardOutput.ReadLineAsync();
        if (!t.Wait(TimeSpan.FromSeconds(timeoutSeconds)))
            Assert.Fail($"child {Pid} wrote no line within {timeoutSeconds}s; stderr: {Stderr}");
        var line = t.Result;
        if (line is null)
        {
            _p.WaitForExit(5000);
            Assert.Fail($"child {Pid} closed stdout (exit {(_p.HasExited ? _p.ExitCode : -1)}); stderr: {Stderr}");
        }
        return line!;
    }

    public void WriteLine(string line)
    {
        _p.StandardInput.WriteLine(line);
        _p.StandardInput.Flush();
    }

    /// <summary>Waits for the exit and returns the exit code; fails the test after <paramref name="timeoutSeconds"/>.</summary>
    public int WaitForExit(int timeoutSeconds = 120)
    {
        if (!_p.WaitForExit(TimeSpan.FromSeconds(timeoutSeconds)))
        {
            Kill();
            Assert.Fail($"child {Pid} did not exit within {timeoutSeconds}s; stderr: {Stderr}");
        }
        _p.WaitForExit();
        return _p.ExitCode;
    }

    /// <summary>SIGKILL (the process only: these children start no children of their own).</summary>
    public void Kill()
    {
        try
        {
            if (!_p.HasExited) _p.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        _p.WaitForExit(10_000);
        _p.Dispose();
    }
}
