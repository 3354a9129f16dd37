namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>Runs <c>syconn-store</c> in-process, capturing what it writes.</summary>
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
}
