using System.CommandLine;
using System.Text.Json.Nodes;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>syconn-store dump FILE</c>: the raw content of a pickle file as typed JSON; an <c>.npz</c> file as a dict of
/// member name (without <c>.npy</c>, as numpy lists them) to array, an <c>.npy</c> file as its array. A
/// <c>bt:IDENTIFIER</c> store is printed as a pickle file of a dict store would be: a dict of its raw entries in
/// stored order.
/// </summary>
/// <remarks>
/// A container that holds itself is printed once, its inner occurrence as a <c>ref</c> node; other shared objects are
/// printed in full at each place, up to <see cref="Formats.Pickle.PickleReadOptions.MaxExpandedNodes"/> added nodes
/// (a file beyond that is refused with an error naming it, before anything is printed).
/// </remarks>
public static class DumpCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A pickle (.pkl), numpy archive (.npz) or numpy array (.npy) file, or a bt:IDENTIFIER store." };
        var cmd = new Command("dump", "Print the raw content of a pickle, .npz or .npy file (or of a bt: store) as one typed JSON document.") { file };
        cmd.SetAction((ParseResult r) =>
        {
            var path = r.GetValue(file)!;
            var options = StoreCommands.ReadOptions(r);
            object value;
            if (EntryStores.IsBackendAddress(path)) value = ReadStore(path, options);
            else
            {
                StoreCommands.RequireFile(path);
                value = RawFile.Read(path, options.PickleOptions);
            }
            JsonObject json;
            try
            {
                json = TypedJson.ToJson(value, options.PickleOptions);
            }
            catch (InvalidDataException e)
            {
                // Too deep or too large once shared references are written out: name the file.
                throw new InputException(e.Message, path, e);
            }
            r.InvocationConfiguration.Output.WriteLine(json.ToJsonString(StoreCommands.Indented));
            return 0;
        });
        return cmd;
    }

    /// <summary>Every raw entry of the store at <paramref name="address"/> as one dict, keys in stored order.</summary>
    /// <exception cref="InputException">The store does not exist.</exception>
    private static PyDict ReadStore(string address, StoreOptions options)
    {
        using var store = StoreCommands.OpenEntryStore(address, EntryStoreKind.Pickle, options);
        StoreCommands.LoadForReading(store, options);
        if (!store.Exists) throw new InputException("no such store", address);
        return StoreCommands.AtBackend(address, () =>
        {
            var dict = new PyDict(store.Count);
            foreach (var (k, v) in store.ReadAll()) dict[k] = v;
            return dict;
        });
    }
}
