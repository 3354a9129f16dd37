using System.CommandLine;
using System.Globalization;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary><c>bss</c> (query) and <c>bss-build</c> (build from .npy files) for BinarySearchStore files.</summary>
public static class BssCommands
{
    /// <summary>Creates <c>bss PATH --attr KEY (--ids 1,2,3 | --ids-file F.npy) [--json]</c>.</summary>
    public static Command Query()
    {
        var path = new Argument<string>("path") { Description = "The .h5 store." };
        var attr = new Option<string>("--attr") { Description = "Attribute name.", Required = true };
        var ids = new Option<string?>("--ids") { Description = "Comma-separated uint64 IDs." };
        var idsFile = new Option<string?>("--ids-file") { Description = "A .npy file of integer IDs." };
        var json = new Option<bool>("--json") { Description = "Print the values as a typed JSON ndarray." };
        var cmd = new Command("bss", "Query a BinarySearchStore: the attribute values of IDs, in query order.") { path, attr, ids, idsFile, json };
        cmd.SetAction((ParseResult r) =>
        {
            var p = r.GetValue(path)!;
            var q = ReadIds(r.GetValue(ids), r.GetValue(idsFile));
            StoreCommands.RequireFile(p);
            using var store = new BinarySearchStore(p);
            var values = store.GetAttributes(q, r.GetValue(attr)!);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) o.WriteLine(TypedJson.ToJson(values).ToJsonString(StoreCommands.Indented));
            else
            {
                long rows = values.NDim == 0 ? 1 : values.Shape[0];
                long width = rows == 0 ? 0 : values.Size / rows;
                for (long i = 0; i < rows; i++)
                {
                    var items = Enumerable.Range(0, (int)width).Select(j => FormatItem(values.GetItem(i * width + j)));
                    o.WriteLine($"{q[(int)i]}\t{string.Join(" ", items)}");
                }
            }
            return 0;
        });
        return cmd;
    }

    private static string FormatItem(object? v) => v switch
    {
        ulong u => u.ToString(CultureInfo.InvariantCulture),
        _ => PyRepr.Repr(v),
    };

    private static ulong[] ReadIds(string? list, string? file)
    {
        if ((list is null) == (file is null)) throw new UsageException("give exactly one of --ids and --ids-file", "--ids");
        if (list is not null)
        {
            try
            {
                return list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(s => ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new UsageException($"--ids must be comma-separated integers in [0, 2^64): {e.Message}", "--ids");
            }
        }
        StoreCommands.RequireFile(file!);
        return ObjectIds.FromArray(NpyFile.Read(file!), file!);
    }

    /// <summary>Creates <c>bss-build OUT --ids IDS.npy --attr NAME=VALUES.npy ... [--shards N] [--overwrite]</c>.</summary>
    public static Command Build()
    {
        var output = new Argument<string>("out") { Description = "The .h5 file to write." };
        var ids = new Option<string>("--ids") { Description = "A .npy file of unique integer IDs.", Required = true };
        var attrs = new Option<string[]>("--attr") { Description = "NAME=VALUES.npy (rows follow the IDs); repeatable.", Required = true, AllowMultipleArgumentsPerToken = false };
        var shards = new Option<int>("--shards") { Description = "Number of shards.", DefaultValueFactory = _ => 5 };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing file." };
        var cmd = new Command("bss-build", "Build a BinarySearchStore (h5py layout) from .npy files.") { output, ids, attrs, shards, overwrite };
        cmd.SetAction((ParseResult r) =>
        {
            var idFile = r.GetValue(ids)!;
            StoreCommands.RequireFile(idFile);
            var idArr = ObjectIds.FromArray(NpyFile.Read(idFile), idFile);
            var dict = new Dictionary<string, NdArray>(StringComparer.Ordinal);
            foreach (var spec in r.GetValue(attrs) ?? [])
            {
                int eq = spec.IndexOf('=');
                if (eq <= 0 || eq == spec.Length - 1) throw new UsageException($"--attr takes NAME=VALUES.npy, got '{spec}'", "--attr");
                var name = spec[..eq];
                var file = spec[(eq + 1)..];
                StoreCommands.RequireFile(file);
                if (!dict.TryAdd(name, NpyFile.Read(file))) throw new UsageException($"attribute '{name}' given twice", "--attr");
            }
            var target = r.GetValue(output)!;
            if (!r.GetValue(overwrite) && (File.Exists(target) || Directory.Exists(target)))
                throw new InputException("exists; give --overwrite to replace it", target);
            try
            {
                using var store = BinarySearchStore.Create(target, idArr, dict, r.GetValue(shards), r.GetValue(overwrite));
                r.InvocationConfiguration.Output.WriteLine($"{r.GetValue(output)}: {idArr.Length} IDs, {store.NShards} shards, attributes {string.Join(", ", store.AttributeNames)}");
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException(e.Message, e);
            }
            catch (IOException e) when (e.Message.Contains("pass overwrite: true", StringComparison.Ordinal))
            {
                throw new InputException(e.Message.Replace("pass overwrite: true", "give --overwrite", StringComparison.Ordinal), target, e);
            }
            return 0;
        });
        return cmd;
    }
}
