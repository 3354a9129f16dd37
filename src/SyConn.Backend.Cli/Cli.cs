using System.CommandLine;
using System.CommandLine.Parsing;
using SyConn.Backend.Cli.Commands;

namespace SyConn.Backend.Cli;

/// <summary>
/// The <c>syconn-store</c> command tree. Conventions (contracts note): POSIX options, <c>--json</c>
/// prints one JSON document on stdout and nothing else there, errors are one line on stderr
/// (<c>syconn-store: what: where</c>), exit code 1 for bad input or a failed check, 2 for bad usage,
/// stack traces only with <c>--verbose</c>.
/// </summary>
public static class Cli
{
    /// <summary>Global option: print stack traces of errors.</summary>
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Print the stack trace of an error.", Recursive = true };

    /// <summary>Global option: the database of <c>bt:IDENTIFIER</c> addresses (null: the library takes <c>SYCONN_BT</c>).</summary>
    public static readonly Option<string?> Bt = new("--bt") { Description = "The BT database (an Npgsql connection string); default: $SYCONN_BT.", HelpName = "CONNSTRING", Recursive = true };

    /// <summary>Builds the command tree.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Inspect, verify, convert and export SyConn storage files.");
        root.Options.Add(Verbose);
        root.Options.Add(Bt);
        foreach (var c in Commands()) root.Subcommands.Add(c);
        return root;
    }

    private static IEnumerable<Command> Commands()
    {
        yield return DumpCommand.Create();
        yield return StoreCommands.Get();
        yield return StoreCommands.Keys();
        yield return ConvertCommand.Create();
        yield return BssCommands.Query();
        yield return BssCommands.Build();
        yield return DemoCommand.Create();
        yield return BenchCommand.Create();
        yield return BenchCommand.Worker();
        yield return LockIncrementCommand.Create();
        yield return BtWorkerCommand.Create();
        yield return BtAdminCommands.Init();
        yield return BtAdminCommands.Move();
        yield return BtAdminCommands.Layout();
        yield return AtomicWriteLoopCommand.Create();
        yield return LoadSegCommand.Create();
        yield return VoxelsCommand.Create();
        foreach (var c in ExportCommands.Create()) yield return c;
        yield return Lz4CompareCommand.Create();
    }

    /// <summary>Parses and runs <paramref name="args"/> writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = BuildRoot();
        ParseResult parsed;
        try
        {
            parsed = root.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            stderr.WriteLine($"syconn-store: {e.Message}: command line");
            return 2;
        }
        if (parsed.Errors.Count > 0)
        {
            foreach (var err in parsed.Errors) stderr.WriteLine($"syconn-store: {err.Message}: command line");
            stderr.WriteLine("syconn-store: see 'syconn-store --help'");
            return 2;
        }
        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        bool verbose = parsed.GetValue(Verbose);
        try
        {
            return parsed.Invoke(config);
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, stderr, verbose);
        }
    }
}

/// <summary>Turns exceptions into the one-line error format and exit codes.</summary>
public static class CliErrors
{
    /// <summary>Writes the error line and returns the exit code for <paramref name="e"/>.</summary>
    public static int Report(Exception e, TextWriter stderr, bool verbose)
    {
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        int code = e is UsageException ? 2 : 1;
        string where = e switch
        {
            UsageException u => u.Where,
            InputException i => i.Where,
            FileNotFoundException f => f.FileName ?? "file",
            DirectoryNotFoundException => "path",
            KeyNotFoundException => "key",
            InvalidDataException => "input",
            IOException => "file system",
            _ => e.GetType().Name,
        };
        stderr.WriteLine($"syconn-store: {OneLine(e.Message)}: {where}");
        if (verbose) stderr.WriteLine(e.ToString());
        return code;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Bad usage of the command line (exit code 2).</summary>
public sealed class UsageException(string message, string where = "command line") : Exception(message)
{
    /// <summary>What part of the command line is wrong.</summary>
    public string Where { get; } = where;
}

/// <summary>Bad input or a failed check, located at <see cref="Where"/> (exit code 1).</summary>
public sealed class InputException(string message, string where, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The store, file or part of the input that is wrong.</summary>
    public string Where { get; } = where;
}
