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
        HelpExamples.Install(root);
        return root;
    }

    private static IEnumerable<Command> Commands()
    {
        yield return DumpCommand.Create();
        yield return StoreCommands.Get();
        yield return StoreCommands.Keys();
        yield return InfoCommand.Create();
        yield return LsCommand.Create();
        yield return VerifyCommand.Create();
        yield return ConvertCommand.Create();
        yield return BssCommands.Query();
        yield return BssCommands.Build();
        yield return DemoCommand.Create();
        yield return BenchCommand.Create();
        yield return BenchCommand.Worker();
        yield return LockIncrementCommand.Create();
        yield return StressWorkerCommand.Create();
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
            stderr.WriteLine($"syconn-store: {CliErrors.Plain(e.Message)}");
            return 2;
        }
        // --help and --version answer even where the rest of the command line is incomplete.
        bool helpOrVersion = HelpExamples.IsHelp(parsed.Action)
            || parsed.Action is not null && root.Options.OfType<VersionOption>().Any(v => ReferenceEquals(v.Action, parsed.Action));
        if (parsed.Errors.Count > 0 && !helpOrVersion)
        {
            stderr.WriteLine($"syconn-store: {ParseErrors.Describe(root, parsed)}");
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
    /// <summary>
    /// Writes the error line and returns the exit code for <paramref name="e"/>: 2 for bad usage, 1 otherwise.
    /// The line is <c>syconn-store: what: where</c> when the exception carries a place the message does not
    /// already name (a file, an option), else <c>syconn-store: what</c>. Exceptions the library documents
    /// (bad data, missing files and keys, lock timeouts, conflicts) are reported by their message alone; any
    /// other kind is a defect of ours and says so, without .NET's type names unless <c>--verbose</c>.
    /// </summary>
    public static int Report(Exception e, TextWriter stderr, bool verbose)
    {
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        int code = e is UsageException ? 2 : 1;
        string what = Plain(e.Message);
        string? where = e switch
        {
            UsageException u => u.Where == UsageException.CommandLine ? null : u.Where,
            InputException i => i.Where,
            FileNotFoundException f => f.FileName,
            _ => null,
        };
        if (e is FileNotFoundException && what.StartsWith("Could not find file", StringComparison.Ordinal)) what = "no such file";
        if (e is DirectoryNotFoundException) what = "no such folder: " + what.Replace("Could not find a part of the path ", "", StringComparison.Ordinal).Trim('\'', '.');
        if (e is UnauthorizedAccessException) what = "permission denied: " + what.Replace("Access to the path ", "", StringComparison.Ordinal);
        bool documented = e is UsageException or InputException or IOException or InvalidDataException or KeyNotFoundException
            or UnauthorizedAccessException or NotSupportedException or TimeoutException or OperationCanceledException
            or Storage.StorageLockTimeoutException or Storage.StoreConflictException or FormatException;
        if (!documented) what = $"internal error: {what} (run again with --verbose and report it)";
        if (where is not null && what.Contains(where, StringComparison.Ordinal)) where = null;
        stderr.WriteLine(where is null ? $"syconn-store: {what}" : $"syconn-store: {what}: {where}");
        if (verbose) stderr.WriteLine(e.ToString());
        return code;
    }

    /// <summary>One line, without .NET's <c>(Parameter 'name')</c> suffix and without a trailing period.</summary>
    public static string Plain(string message)
    {
        var s = message.ReplaceLineEndings(" ");
        int p = s.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (p >= 0) s = s[..p];
        return s.TrimEnd().TrimEnd('.');
    }
}

/// <summary>Parse errors of System.CommandLine in this tool's words, on one line, with a pointer to the help.</summary>
internal static class ParseErrors
{
    public static string Describe(RootCommand root, ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        string help = command is RootCommand ? "syconn-store --help" : $"syconn-store {command.Name} --help";
        var err = parsed.Errors[0];
        if (command is RootCommand)
        {
            var names = root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
            var first = parsed.Tokens.FirstOrDefault(t => t.Type != TokenType.Option);
            string what = first is null || parsed.Tokens.Count == 0
                ? "no command given"
                : $"unknown command '{first.Value}'";
            return $"{what}; the commands are: {string.Join(", ", names)} (see '{help}')";
        }
        var msg = CliErrors.Plain(err.Message);
        if (msg.StartsWith("Unrecognized command or argument ", StringComparison.Ordinal))
            msg = "unexpected argument " + msg["Unrecognized command or argument ".Length..];
        else if (msg.Length > 0) msg = char.ToLowerInvariant(msg[0]) + msg[1..];
        int more = parsed.Errors.Count - 1;
        return $"{msg}{(more > 0 ? $" (and {more} more problem{(more > 1 ? "s" : "")})" : "")}; see '{help}'";
    }
}

/// <summary>Bad usage of the command line (exit code 2).</summary>
public sealed class UsageException(string message, string where = UsageException.CommandLine) : Exception(message)
{
    /// <summary>The <see cref="Where"/> of an error that concerns the command line as a whole.</summary>
    public const string CommandLine = "command line";

    /// <summary>What part of the command line is wrong.</summary>
    public string Where { get; } = where;
}

/// <summary>Bad input or a failed check, located at <see cref="Where"/> (exit code 1).</summary>
public sealed class InputException(string message, string where, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The store, file or part of the input that is wrong.</summary>
    public string Where { get; } = where;
}
