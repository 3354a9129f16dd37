using System.CommandLine;
using System.Globalization;
using System.Text;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _lock-increment FILE N</c>: N times, under the store lock of FILE
/// (<see cref="LockPaths.ForStore"/>), read the decimal counter in FILE (missing or empty = 0) and write it
/// back plus one. Used by the lost-update tests that mix several of these processes with Python ones.
/// </summary>
public static class LockIncrementCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The counter file." };
        var count = new Argument<int>("n") { Description = "How many increments." };
        var durable = new Option<bool>("--durable") { Description = "fsync every write." };
        var cmd = new Command("_lock-increment", "Test helper: locked read-modify-write increments of a counter file.")
        {
            file, count, durable,
        };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            string path = r.GetValue(file)!;
            int n = r.GetValue(count);
            if (n < 0) throw new UsageException("n must not be negative", "n");
            bool sync = r.GetValue(durable);
            string lockPath = LockPaths.ForStore(path);
            var options = new LockOptions { Timeout = TimeSpan.FromSeconds(120) };
            for (int i = 0; i < n; i++)
            {
                using var held = FileLock.Acquire(lockPath, options);
                long value = Increment(path, sync);
                _ = value;
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Reads the counter of <paramref name="path"/>, writes it back plus one, returns the new value. The caller holds the lock.</summary>
    public static long Increment(string path, bool durable)
    {
        byte[]? bytes = AtomicFile.ReadAllBytes(path);
        string text = bytes is null ? "" : Encoding.ASCII.GetString(bytes).Trim();
        long value = text.Length == 0 ? 0 : long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        value++;
        AtomicFile.Write(path, Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture)), durable);
        return value;
    }
}
