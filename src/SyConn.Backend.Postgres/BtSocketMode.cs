using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// Puts the socket of a connection used synchronously into blocking mode at the OS level (Linux), and back into
/// non-blocking mode for a connection used asynchronously.
/// </summary>
/// <remarks>
/// <para>Npgsql's synchronous connect sets <see cref="Socket.Blocking"/> to false while it connects and to true after.
/// On Unix, .NET then leaves the descriptor non-blocking for good and emulates every blocking read: a read that finds
/// no data registers with .NET's epoll thread, which wakes the caller when the data comes. Each such read costs two
/// thread wake-ups, and the waiting threads spin (<c>sched_yield</c>) before they sleep; a W1 pull made about 8,400
/// <c>sched_yield</c> calls. With the descriptor blocking, .NET's first, non-blocking attempt of each read is an
/// ordinary blocking <c>recvmsg</c> in the caller's thread, which returns with the data. Writes behave the same way.</para>
/// <para>The socket is reached through Npgsql's non-public fields (<c>NpgsqlConnection.Connector</c>,
/// <c>NpgsqlConnector._socket</c>); when a later Npgsql renames them, nothing is changed and the connection works as
/// before, only slower. <c>SYCONN_BT_BLOCKING_SOCKETS=0</c> turns this off. Command timeouts still apply: Npgsql sets
/// <c>SO_RCVTIMEO</c> on the socket for them, which a blocking read obeys.</para>
/// </remarks>
internal static partial class BtSocketMode
{
    private const int F_GETFL = 3;
    private const int F_SETFL = 4;
    private const int O_NONBLOCK = 0x800; // 04000 octal on x86-64 and arm64

    private static readonly PropertyInfo? ConnectorProperty =
        typeof(NpgsqlConnection).GetProperty("Connector", BindingFlags.Instance | BindingFlags.NonPublic);

    private static FieldInfo? _socketField;

    /// <summary>True where the switch is made: Linux, unless <c>SYCONN_BT_BLOCKING_SOCKETS=0</c>.</summary>
    public static bool Enabled { get; } = OperatingSystem.IsLinux()
        && Environment.GetEnvironmentVariable("SYCONN_BT_BLOCKING_SOCKETS") != "0";

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    /// <summary>The socket under <paramref name="c"/>, or null when Npgsql's fields are not where this code expects them.</summary>
    internal static Socket? SocketOf(NpgsqlConnection c)
    {
        var connector = ConnectorProperty?.GetValue(c);
        if (connector is null) return null;
        var field = _socketField;
        if (field is null || field.DeclaringType != connector.GetType())
            _socketField = field = connector.GetType().GetField("_socket", BindingFlags.Instance | BindingFlags.NonPublic);
        return field?.GetValue(connector) as Socket;
    }

    /// <summary>
    /// Makes the descriptor of <paramref name="c"/>'s socket blocking (<paramref name="blocking"/>) or non-blocking.
    /// Returns false when nothing was done (not Linux, turned off, no socket found, or <c>fcntl</c> failed).
    /// </summary>
    public static bool Set(NpgsqlConnection c, bool blocking)
    {
        if (!Enabled || SocketOf(c) is not { } socket) return false;
        var handle = socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int flags = Fcntl(fd, F_GETFL, 0);
            if (flags < 0) return false;
            int wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
            return wanted == flags || Fcntl(fd, F_SETFL, wanted) == 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>True when <paramref name="c"/>'s socket descriptor is in blocking mode; null when it cannot be told.</summary>
    internal static bool? IsBlocking(NpgsqlConnection c)
    {
        if (!OperatingSystem.IsLinux() || SocketOf(c) is not { } socket) return null;
        int flags = Fcntl((int)socket.SafeHandle.DangerousGetHandle(), F_GETFL, 0);
        return flags < 0 ? null : (flags & O_NONBLOCK) == 0;
    }
}
