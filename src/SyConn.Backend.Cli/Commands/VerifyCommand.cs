using System.Collections.Concurrent;
using System.CommandLine;
using System.Text.Json.Nodes;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>verify PATH|DIR [--json] [--quiet]</c>: opens every store under PATH and decodes every entry: the entries of
/// the pickle stores through their class's getter (class told from the content), every member of an npz, every
/// attribute of every shard of a BinarySearchStore (checked against its IDs and bucket ranges), and every cube of a
/// KNOSSOS dataset's magnifications. Prints each corrupt file with the key, member or cube and the reason, then
/// <c>N stores, M entries verified, K corrupt</c>; exits 1 when a store is corrupt.
/// </summary>
/// <remarks>
/// Never writes and takes no lock (no lock file is created; read-only folders work). Stores are checked in
/// parallel, one per core, each read and decoded on its own, so memory stays bounded by the largest stores being
/// read at a time. Progress (stores done) goes to stderr unless <c>--quiet</c>. Entries counted: the object keys of
/// a dict store, the members of an npz, the IDs of a BinarySearchStore, the cube files of a KNOSSOS dataset.
/// </remarks>
public static class VerifyCommand
{
    private const int MaxProblemsPerStore = 20;

    /// <summary>A corrupt entry (or a whole store that could not be read: <see cref="Item"/> null).</summary>
    internal sealed record Problem(string Path, string? ItemKind, string? Item, string Reason);

    /// <summary>The result of one store.</summary>
    internal sealed record Checked(string Path, string Class, long Entries, List<Problem> Problems);

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A store file, a KNOSSOS dataset, a folder to search recursively, or bt:IDENTIFIER." };
        var json = new Option<bool>("--json") { Description = "Print one JSON document: {\"stores\", \"entries\", \"corrupt\", \"problems\": [...], \"checked\": [...]}." };
        var quiet = new Option<bool>("--quiet") { Description = "No progress on stderr." };
        var cmd = new Command("verify", "Decode every entry of every store under a path; report each corrupt file with the key and reason (exit 1 if any).\n\nExample:\n  syconn-store verify /data/wd") { path, json, quiet };
        cmd.SetAction((ParseResult r) =>
        {
            var root = r.GetValue(path)!;
            bool backend = EntryStores.IsBackendAddress(root);
            if (!backend && !Directory.Exists(root) && !File.Exists(root)) throw new InputException("no such file or folder", root);
            var options = StoreScan.NoLock(StoreCommands.ReadOptions(r));
            var stores = backend ? [new FoundStore(root, FoundKind.Backend)] : StoreScan.Find(root);
            var results = new Checked[stores.Count];
            using (var progress = new ProgressBar(r.GetValue(quiet) ? null : r.InvocationConfiguration.Error, "verify", stores.Count, "stores"))
            {
                Parallel.For(0, stores.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
                {
                    results[i] = Verify(stores[i], options);
                    progress.Add();
                });
            }
            long entries = results.Sum(c => c.Entries);
            int corrupt = results.Count(c => c.Problems.Count > 0);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                var problems = new JsonArray();
                foreach (var p in results.SelectMany(c => c.Problems))
                {
                    var item = new JsonObject { ["path"] = StoreScan.Relative(root, p.Path) };
                    if (p.ItemKind is not null) item[p.ItemKind] = p.Item;
                    item["reason"] = p.Reason;
                    problems.Add(item);
                }
                var all = new JsonArray(results.Select(c => (JsonNode?)new JsonObject
                {
                    ["path"] = StoreScan.Relative(root, c.Path),
                    ["class"] = c.Class,
                    ["entries"] = c.Entries,
                    ["ok"] = c.Problems.Count == 0,
                }).ToArray());
                o.WriteLine(new JsonObject
                {
                    ["path"] = backend ? root : Path.GetFullPath(root),
                    ["stores"] = results.Length,
                    ["entries"] = entries,
                    ["corrupt"] = corrupt,
                    ["problems"] = problems,
                    ["checked"] = all,
                }.ToJsonString(StoreCommands.Indented));
            }
            else
            {
                foreach (var p in results.SelectMany(c => c.Problems))
                {
                    string at = p.ItemKind is null ? "" : $" {p.ItemKind} {p.Item}";
                    o.WriteLine($"corrupt: {StoreScan.Relative(root, p.Path)}{at}: {p.Reason}");
                }
                o.WriteLine($"{results.Length} stores, {entries} entries verified, {corrupt} corrupt");
            }
            return corrupt > 0 ? 1 : 0;
        });
        return cmd;
    }

    /// <summary>Reads and decodes every entry of one store; nothing it throws escapes (it becomes a problem).</summary>
    internal static Checked Verify(FoundStore s, StoreOptions options)
    {
        var problems = new List<Problem>();
        string cls = "?";
        long entries = 0;
        try
        {
            switch (s.Kind)
            {
                case FoundKind.Pickle:
                case FoundKind.Backend:
                {
                    var found = s.Kind == FoundKind.Backend ? StoreCommands.Resolve(s.Path, null, options) : StoreDetection.Detect(s.Path, options);
                    if (found.Class is not { } c) break; // an empty store whose class nothing tells: no entry to decode
                    cls = c.ToString();
                    using var store = StoreCommands.AtBackend(s.Path, () => StoreFactory.Open(c, s.Path, options, new StoreParameters { LoadColArr = true }));
                    foreach (var k in store.Keys)
                    {
                        entries++;
                        try
                        {
                            store.GetAsPython(k);
                            if (store is VoxelStorageDyn dyn)
                            {
                                // The getter returns a cached voxel array where there is one: decode the stored boxes too,
                                // and the object's size record.
                                CompressedStorage.DecodeEntry(dyn.GetRaw(k), $"{dyn.Location}, key {k}");
                                dyn.ObjectSize(k);
                            }
                        }
                        catch (Exception e) when (e is not OutOfMemoryException)
                        {
                            if (problems.Count < MaxProblemsPerStore) problems.Add(new Problem(s.Path, "key", k.ToString(), Reason(e, s.Path)));
                        }
                    }
                    break;
                }
                case FoundKind.Npz:
                {
                    cls = nameof(StoreClass.VoxelStorageLazyLoading);
                    using var npz = NpzFile.OpenRead(s.Path);
                    foreach (var name in npz.Keys)
                    {
                        entries++;
                        try
                        {
                            npz.Read(name);
                        }
                        catch (Exception e) when (e is not OutOfMemoryException)
                        {
                            if (problems.Count < MaxProblemsPerStore) problems.Add(new Problem(s.Path, "member", name + ".npy", Reason(e, s.Path)));
                        }
                    }
                    break;
                }
                case FoundKind.Hdf5:
                    cls = nameof(StoreClass.BinarySearchStore);
                    entries = VerifyBss(s.Path, problems);
                    break;
                case FoundKind.Knossos:
                    cls = "KnossosDataset";
                    entries = VerifyKnossos(s.Path, problems);
                    break;
                default:
                    problems.Add(new Problem(s.Path, null, null, StoreDetection.Describe(StoreDetection.FileKindOf(s.Path))));
                    break;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            problems.Add(new Problem(s.Path, null, null, Reason(e, s.Path)));
        }
        return new Checked(s.Path, cls, entries, problems);
    }

    private static string Reason(Exception e, string path) =>
        StoreScan.StripLocation(e is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0].Message : e.Message, path);

    /// <summary>Reads every attribute for every ID (shard by shard) and checks IDs, order and bucket ranges.</summary>
    private static long VerifyBss(string path, List<Problem> problems)
    {
        using var b = new BinarySearchStore(path);
        var ids = b.IdArray;
        var ranges = b.BucketRanges;
        for (int i = 1; i < ids.Length; i++)
            if (ids[i] <= ids[i - 1])
            {
                problems.Add(new Problem(path, "id", ids[i].ToString(System.Globalization.CultureInfo.InvariantCulture), $"IDs are not sorted and unique at position {i}"));
                break;
            }
        foreach (var (first, last) in ranges)
            if (first > last) problems.Add(new Problem(path, "shard", $"{first}..{last}", "bucket range is inverted"));
        const int Batch = 1 << 16;
        foreach (var name in b.AttributeNames)
        {
            try
            {
                var shape = b.GetAttributeShape(name);
                if (shape.Length == 0 || shape[0] != ids.LongLength)
                {
                    problems.Add(new Problem(path, "attribute", name, $"shape ({string.Join(", ", shape)}) does not match {ids.Length} IDs"));
                    continue;
                }
                for (int start = 0; start < ids.Length; start += Batch)
                {
                    var part = ids.AsSpan(start, Math.Min(Batch, ids.Length - start));
                    var got = b.TryGetAttributes(part, name, out var present);
                    int missing = Array.IndexOf(present, false);
                    if (missing >= 0)
                    {
                        problems.Add(new Problem(path, "attribute", name, $"ID {part[missing]} is not found by a lookup"));
                        break;
                    }
                    if (got.Shape[0] != part.Length) problems.Add(new Problem(path, "attribute", name, $"lookup returned {got.Shape[0]} rows for {part.Length} IDs"));
                    b.ClearCache();
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problems.Add(new Problem(path, "attribute", name, Reason(e, path)));
            }
        }
        return ids.LongLength;
    }

    /// <summary>Decodes every cube file of every magnification (one cube buffer per worker).</summary>
    private static long VerifyKnossos(string dir, List<Problem> problems)
    {
        var conf = KnossosConfigFiles.Open(dir);
        long voxels = conf.CubeShape.Product;
        var cubes = StoreScan.Mags(conf.Root).SelectMany(m => StoreScan.Cubes(Path.Combine(conf.Root, m))).ToList();
        var bad = new ConcurrentBag<Problem>();
        Parallel.ForEach(cubes, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount / 2) },
            () => new ulong[voxels],
            (cube, _, buffer) =>
            {
                try
                {
                    using var fs = new FileStream(cube, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    KnossosCubeCodecRead(fs, buffer, cube);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    bad.Add(new Problem(dir, "cube", Path.GetRelativePath(conf.Root, cube), StoreScan.StripLocation(e.Message, cube)));
                }
                return buffer;
            },
            _ => { });
        problems.AddRange(bad.OrderBy(p => p.Item, StringComparer.Ordinal).Take(MaxProblemsPerStore));
        return cubes.Count;
    }

    private static void KnossosCubeCodecRead(Stream zip, ulong[] buffer, string source) =>
        Formats.Knossos.KnossosCubeCodec.Decode(zip, buffer, source);
}
