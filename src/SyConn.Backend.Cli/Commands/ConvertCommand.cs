using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>convert SRC DST [--as CLASS] [--overwrite] [--json] [--quiet]</c>: copies the raw per-key entries of a store
/// from one address to another (files and <c>bt:</c> stores, either way), losslessly: the entries are the undecoded
/// Python object trees, so no store class decodes or re-encodes them.
/// </summary>
/// <remarks>
/// <para>The kind of entries (pickle trees or npz arrays) comes from <c>--as</c> (VoxelStorageLazyLoading holds
/// arrays, every other class pickle trees) or else from the source (a <c>.npz</c> name or a zip file: arrays, anything else
/// pickle trees). With <c>--as</c>, the class's path rule applies to both addresses (VoxelStorageDyn appends
/// <c>.pkl</c>, VoxelStorageLazyLoading <c>.npz</c>) and VoxelStorageDyn's voxel cache is copied with the entries.</para>
/// <para>Nothing is written until the source has been read (a corrupt source leaves the destination untouched);
/// the destination is written under its lock in one atomic replace per store, the voxel cache first, then read
/// back and compared (count and keys) with the source.</para>
/// </remarks>
public static class ConvertCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var src = new Argument<string>("source") { Description = "The store to read: a file, or bt:IDENTIFIER." };
        var dst = new Argument<string>("destination") { Description = "The store to write: a file, or bt:IDENTIFIER." };
        var asOpt = new Option<string?>("--as")
        {
            Description = "Store class: VoxelStorageLazyLoading copies npz arrays, VoxelStorageDyn also copies its voxel cache, the others copy pickle entries; "
                + "default: told from the source file name (.npz arrays, else pickle entries).",
            HelpName = "CLASS",
        };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace a destination that already holds entries." };
        var json = new Option<bool>("--json") { Description = "Print the summary as one JSON document." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress lines on stderr." };
        var cmd = new Command("convert", "Copy a store's raw entries to another address (file or bt:), losslessly, and verify the copy.") { src, dst, asOpt, overwrite, json, quiet };
        cmd.SetAction((ParseResult r) =>
        {
            var request = new Request(r.GetValue(src)!, r.GetValue(dst)!, r.GetValue(asOpt), r.GetValue(overwrite), r.GetValue(Cli.Bt));
            var stderr = r.InvocationConfiguration.Error;
            var result = Convert(request, r.GetValue(quiet) ? null : stderr, stderr);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                var doc = new JsonObject
                {
                    ["source"] = result.Source,
                    ["destination"] = result.Destination,
                    ["entries"] = result.Entries,
                    ["side_entries"] = result.SideEntries,
                    ["seconds"] = Math.Round(result.Seconds, 3),
                };
                o.WriteLine(doc.ToJsonString(StoreCommands.Indented));
            }
            else
            {
                var side = result.SideCopied ? $", with {result.SideEntries} voxel cache entries" : "";
                o.WriteLine($"converted {result.Entries} entries from {result.Source} to {result.Destination}{side}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>What to convert.</summary>
    /// <param name="Source">The address to read.</param>
    /// <param name="Destination">The address to write.</param>
    /// <param name="As">The <c>--as</c> class name, or null.</param>
    /// <param name="Overwrite">Replace a destination that holds entries.</param>
    /// <param name="ConnectionString">The database of <c>bt:</c> addresses (null: <c>SYCONN_BT</c>).</param>
    internal sealed record Request(string Source, string Destination, string? As, bool Overwrite, string? ConnectionString);

    /// <summary>What was converted.</summary>
    /// <param name="Source">The address read (after the class's path rule).</param>
    /// <param name="Destination">The address written (after the class's path rule).</param>
    /// <param name="Entries">Entries in the destination, checked against the source.</param>
    /// <param name="SideEntries">Voxel cache entries copied (0 when none).</param>
    /// <param name="SideCopied">True when a voxel cache was written.</param>
    /// <param name="Seconds">Wall time of the whole conversion.</param>
    internal sealed record Result(string Source, string Destination, int Entries, int SideEntries, bool SideCopied, double Seconds);

    /// <summary>Runs a conversion; progress lines go to <paramref name="progress"/> (null: none), notes to <paramref name="notes"/>.</summary>
    internal static Result Convert(Request request, TextWriter? progress, TextWriter notes)
    {
        var clock = Stopwatch.StartNew();
        StoreClass? cls = request.As is null ? null : StoreCommands.ParseClass(request.As);
        if (cls == StoreClass.BinarySearchStore)
            throw new UsageException("a BinarySearchStore has no per-key entries to convert", "--as");
        if (cls is null && !EntryStores.IsBackendAddress(request.Source) && StoreDetection.FileKindOf(request.Source) == StoreFileKind.Hdf5)
            throw new UsageException("a BinarySearchStore (HDF5) has no per-key entries to convert", request.Source);
        var kind = KindOf(cls, request.Source);
        string source = WithPathRule(request.Source, cls);
        string destination = WithPathRule(request.Destination, cls);
        if (SameStore(source, destination)) throw new UsageException("the source and the destination are the same store", destination);

        var readOptions = StoreOptions.Default with { ConnectionString = request.ConnectionString };
        var writeOptions = StoreOptions.Writable with { ConnectionString = request.ConnectionString };

        // Read the source first: nothing is written (no folder, no lock file) when it is missing or corrupt.
        if (!EntryStores.IsBackendAddress(source)) StoreCommands.RequireFile(source);
        using var from = StoreCommands.OpenEntryStore(source, kind, readOptions);
        IEntryStore? fromSide = null;
        try
        {
            StoreCommands.LoadForReading(from, readOptions, cls == StoreClass.VoxelStorageDyn ? () => fromSide = LoadSide(from, readOptions) : null);
            if (!from.Exists) throw new InputException("no such store", source);
            if (cls is null && kind == EntryStoreKind.Pickle) NoteVoxelCache(from, source, notes);

            using var to = StoreCommands.OpenEntryStore(destination, kind, writeOptions);
            using var toSide = cls == StoreClass.VoxelStorageDyn ? to.OpenSideStore(IEntryStore.VoxelCacheSideStore) : null;
            int written = 0, sideWritten = 0;
            bool sideCopied = false;
            StoreCommands.AtBackend(destination, () =>
            {
                to.EnsureWritable();
                using var held = to.AcquireLock(writeOptions.LockOptions);
                bool hasSide = RefuseOccupied(to, toSide, destination, request.Overwrite, writeOptions);
                // The voxel cache goes first, as VoxelStorageDyn pushes it: a reader never sees entries whose cache is
                // missing. A destination cache with no source cache is emptied, so no stale arrays stay behind.
                if (toSide is not null && (fromSide is not null || hasSide))
                {
                    sideWritten = Copy(fromSide, toSide, writeOptions, progress, "convert: voxel cache");
                    sideCopied = true;
                }
                written = Copy(from, to, writeOptions, progress, "convert:");
                return 0;
            });

            Verify(from, destination, kind, readOptions, fromSide, sideCopied);
            return new Result(source, destination, written, sideWritten, sideCopied, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            fromSide?.Dispose();
        }
    }

    /// <summary>Npz arrays for VoxelStorageLazyLoading or a <c>.npz</c> source without <c>--as</c>; pickle trees otherwise.</summary>
    internal static EntryStoreKind KindOf(StoreClass? cls, string source) => cls switch
    {
        StoreClass.VoxelStorageLazyLoading => EntryStoreKind.Npz,
        not null => EntryStoreKind.Pickle,
        null when !EntryStores.IsBackendAddress(source)
            && (source.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) || StoreDetection.FileKindOf(source) == StoreFileKind.Zip) => EntryStoreKind.Npz,
        null => EntryStoreKind.Pickle,
    };

    /// <summary>SyConn's file naming of the class: VoxelStorageDyn appends <c>.pkl</c>, VoxelStorageLazyLoading <c>.npz</c> (paths only).</summary>
    private static string WithPathRule(string address, StoreClass? cls) => cls switch
    {
        StoreClass.VoxelStorageDyn => VoxelStorageDyn.PklPath(address),
        StoreClass.VoxelStorageLazyLoading when !EntryStores.IsBackendAddress(address) && !address.EndsWith(".npz", StringComparison.Ordinal) => address + ".npz",
        _ => address,
    };

    private static bool SameStore(string a, string b)
    {
        bool ba = EntryStores.IsBackendAddress(a), bb = EntryStores.IsBackendAddress(b);
        if (ba || bb) return ba && bb && string.Equals(a, b, StringComparison.Ordinal);
        return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
    }

    /// <summary>The source's voxel cache when it has one (loaded), else null.</summary>
    private static IEntryStore? LoadSide(IEntryStore store, StoreOptions options)
    {
        var side = store.OpenSideStore(IEntryStore.VoxelCacheSideStore);
        try
        {
            side.Load(options);
        }
        catch
        {
            side.Dispose();
            throw;
        }
        if (side.Exists) return side;
        side.Dispose();
        return null;
    }

    /// <summary>A pickle file converted without <c>--as</c> keeps no voxel cache: say so when one lies beside it.</summary>
    private static void NoteVoxelCache(IEntryStore from, string source, TextWriter notes)
    {
        if (EntryStores.IsBackendAddress(source)) return;
        using var side = from.OpenSideStore(IEntryStore.VoxelCacheSideStore);
        if (File.Exists(side.Location))
            notes.WriteLine($"syconn-store: note: {side.Location} (a VoxelStorageDyn voxel cache?) is not copied; give --as VoxelStorageDyn to copy it too: {source}");
    }

    /// <summary>
    /// Refuses a destination that holds entries (or cannot be read) unless <paramref name="overwrite"/>, which skips
    /// reading the destination's entries. Returns true when the destination has a voxel cache (readable or not).
    /// </summary>
    private static bool RefuseOccupied(IEntryStore to, IEntryStore? toSide, string destination, bool overwrite, StoreOptions options)
    {
        if (!overwrite) Check(to);
        return toSide is not null && Check(toSide);

        bool Check(IEntryStore store)
        {
            try
            {
                store.Load(options);
            }
            catch (InvalidDataException e)
            {
                if (overwrite) return true;
                throw new InputException($"{What(store)} exists but cannot be read ({e.Message}); give --overwrite to replace it", destination, e);
            }
            if (!overwrite && store.Exists && store.Count > 0)
                throw new InputException($"{What(store)} already holds {store.Count} entries; give --overwrite to replace them", destination);
            return store.Exists;
        }

        string What(IEntryStore store) => store == to ? "the destination" : $"the destination's voxel cache {store.Location}";
    }

    /// <summary>Replaces <paramref name="to"/>'s entries with <paramref name="from"/>'s (none when null), streamed and counted as they are written.</summary>
    private static int Copy(IEntryStore? from, IEntryStore to, StoreOptions options, TextWriter? progress, string label)
    {
        using var counter = new ProgressBar(progress, label, from?.Count ?? 0);
        to.ReplaceAll(counter.Count(from?.ReadAll() ?? []), options);
        counter.Finish();
        return (int)counter.Done;
    }

    /// <summary>Reads the destination back and compares its count and keys with the source's.</summary>
    private static void Verify(IEntryStore from, string destination, EntryStoreKind kind, StoreOptions options, IEntryStore? fromSide, bool sideCopied)
    {
        using var check = StoreCommands.OpenEntryStore(destination, kind, options);
        IEntryStore? checkSide = null;
        try
        {
            StoreCommands.LoadForReading(check, options, sideCopied ? () => { checkSide = check.OpenSideStore(IEntryStore.VoxelCacheSideStore); checkSide.Load(options); } : null);
            SameKeys(from, check, destination);
            if (checkSide is not null)
            {
                if (fromSide is not null) SameKeys(fromSide, checkSide, checkSide.Location);
                else if (checkSide.Count != 0) throw new InputException($"verification failed: the voxel cache holds {checkSide.Count} entries, the source has none", checkSide.Location);
            }
        }
        finally
        {
            checkSide?.Dispose();
        }
    }

    private static void SameKeys(IEntryStore expected, IEntryStore actual, string where)
    {
        if (expected.Count != actual.Count)
            throw new InputException($"verification failed: the source has {expected.Count} entries, the copy {actual.Count}", where);
        var missing = new HashSet<object>(expected.Keys, PyEquality.Comparer);
        foreach (var k in actual.Keys)
            if (!missing.Remove(k))
                throw new InputException($"verification failed: the copy has key {StoreKeyText(k)}, which the source has not", where);
        if (missing.Count > 0)
            throw new InputException($"verification failed: the copy lacks key {StoreKeyText(missing.First())}", where);
    }

    private static string StoreKeyText(object key)
    {
        try { return StoreKey.FromPython(key).ToString(); }
        catch (ArgumentException) { return PyRepr.Repr(key); }
    }
}
