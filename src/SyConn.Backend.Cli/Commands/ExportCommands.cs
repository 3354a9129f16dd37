using System.CommandLine;
using System.Globalization;
using SyConn.Backend.Export;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>export-mesh STORE KEY --format ply|obj|glb [-o FILE] [--load-colarr]</c> and
/// <c>export-skeleton STORE KEY --format swc [-o FILE] [--scale X,Y,Z]</c>, each also as <c>--all -o DIR</c>:
/// the command line over <see cref="StoreExport"/>, which holds the logic.
/// </summary>
/// <remarks>
/// One line per file written on stdout; notes (what a format cannot hold, dropped cycle edges) on stderr as
/// <c>syconn-store: note: what: where</c>. Errors: exit 1 for a missing key, an entry that is not what the store class
/// holds, or a file that cannot be written; exit 2 for bad usage.
/// </remarks>
public static class ExportCommands
{
    /// <summary>Creates <c>export-mesh</c> and <c>export-skeleton</c>.</summary>
    public static IEnumerable<Command> Create() => [Mesh(), Skeleton()];

    /// <summary>Creates <c>export-mesh</c>.</summary>
    public static Command Mesh()
    {
        var store = new Argument<string>("store") { Description = "A MeshStorage file, or bt:IDENTIFIER." };
        var key = KeyArgument();
        var format = new Option<string>("--format") { Description = "ply (binary little-endian), obj or glb (glTF binary).", Required = true, HelpName = "ply|obj|glb" };
        var output = OutputOption();
        var all = AllOption();
        var colarr = new Option<bool>("--load-colarr")
        {
            Description = "Also export the colour/label array: RGB(A) colours as vertex colours (PLY, OBJ without alpha, GLB); "
                + "a single-channel array (labels) as the PLY property 'label', left out of OBJ and GLB with a note.",
        };
        var cmd = new Command("export-mesh",
            "Export a mesh of a MeshStorage as PLY, OBJ or GLB (normals when stored).\n"
            + "Examples:\n"
            + "  syconn-store export-mesh mesh.pkl 5 --format glb -o cell5.glb\n"
            + "  syconn-store export-mesh mesh.pkl --all --format ply --load-colarr -o meshes/   (files <key>.ply)")
        { store, key, format, output, all, colarr };
        cmd.SetAction((ParseResult r) =>
        {
            var address = r.GetValue(store)!;
            var fmt = ParseMeshFormat(r.GetValue(format)!);
            var ext = MeshWriter.Extension(fmt);
            var target = Target(r, key, output, all, ext);
            bool colours = r.GetValue(colarr);
            // Colours are always loaded, so every array of an entry is checked against the MeshStorage layout.
            using var s = (MeshStorage)StoreCommands.OpenStore(address, StoreClass.MeshStorage, StoreCommands.ReadOptions(r), new StoreParameters { LoadColArr = true });
            return Run(r, address, "mesh", target,
                (k, p) => StoreExport.ExportMesh(s, k, fmt, p, colours),
                (dir, each) => StoreExport.ExportAllMeshes(s, fmt, dir, colours, each));
        });
        return cmd;
    }

    /// <summary>Creates <c>export-skeleton</c>.</summary>
    public static Command Skeleton()
    {
        var store = new Argument<string>("store") { Description = "A SkeletonStorage file, or bt:IDENTIFIER." };
        var key = KeyArgument();
        var format = new Option<string>("--format") { Description = "swc (standard SWC: n T x y z R P).", Required = true, HelpName = "swc" };
        var output = OutputOption();
        var all = AllOption();
        var scale = new Option<string?>("--scale")
        {
            Description = "Multiply x, y and z by these (e.g. the voxel size in nm); default 1,1,1 (voxels). Radii (diameter / 2) are not scaled.",
            HelpName = "X,Y,Z",
        };
        var cmd = new Command("export-skeleton",
            "Export a skeleton of a SkeletonStorage as SWC: one root (parent -1) per connected component, oriented outward from its "
            + "first node, parents before children; edges that close a cycle are dropped and counted in a note.\n"
            + "Examples:\n"
            + "  syconn-store export-skeleton skeleton.pkl 5 --format swc --scale 10,10,25 -o cell5.swc\n"
            + "  syconn-store export-skeleton skeleton.pkl --all --format swc -o skeletons/   (files <key>.swc)")
        { store, key, format, output, all, scale };
        cmd.SetAction((ParseResult r) =>
        {
            var address = r.GetValue(store)!;
            if (!string.Equals(r.GetValue(format), "swc", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"unknown skeleton format '{r.GetValue(format)}'; use swc", "--format");
            var sc = ParseScale(r.GetValue(scale));
            var target = Target(r, key, output, all, SwcWriter.Extension);
            using var s = (SkeletonStorage)StoreCommands.OpenStore(address, StoreClass.SkeletonStorage, StoreCommands.ReadOptions(r), null);
            return Run(r, address, "skeleton", target,
                (k, p) => StoreExport.ExportSkeleton(s, k, p, sc),
                (dir, each) => StoreExport.ExportAllSkeletons(s, dir, sc, each));
        });
        return cmd;
    }

    private static Argument<string?> KeyArgument() => new("key")
    {
        Description = "A decimal integer, str:NAME or tuple:A,B (negative numbers after --); leave out with --all.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private static Option<string?> OutputOption() => new("--output", "-o")
    {
        Description = "The file to write (default: <key>.<ext> in the working directory); with --all the folder (required, created if missing). An existing file is replaced.",
        HelpName = "FILE|DIR",
    };

    private static Option<bool> AllOption() => new("--all") { Description = "Export every key into the folder given with -o, as <key>.<ext> (names made safe: never a path outside the folder)." };

    /// <summary>Where to write: one key to a file, or every key into a folder.</summary>
    private sealed record Destination(StoreKey? Key, string Path);

    private static Destination Target(ParseResult r, Argument<string?> key, Option<string?> output, Option<bool> all, string ext)
    {
        var keyText = r.GetValue(key);
        var o = r.GetValue(output);
        if (r.GetValue(all))
        {
            if (keyText is not null) throw new UsageException("give either KEY or --all, not both", "KEY");
            if (string.IsNullOrEmpty(o)) throw new UsageException("--all needs -o DIR, the folder to write into", "-o");
            if (File.Exists(o)) throw new InputException("is a file, not a folder", o);
            return new Destination(null, o);
        }
        if (keyText is null) throw new UsageException("give KEY, or --all -o DIR for every key", "KEY");
        var k = StoreCommands.ParseKey(keyText);
        var path = string.IsNullOrEmpty(o) ? ExportFileNames.For(k, ext) : o;
        if (Directory.Exists(path)) throw new InputException("is a folder; give the file to write, or use --all", path);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null && !Directory.Exists(folder)) throw new InputException("no such folder", folder);
        return new Destination(k, path);
    }

    private static int Run(ParseResult r, string address, string what, Destination target,
        Func<StoreKey, string, ExportedFile> one, Func<string, Action<ExportedFile>, IReadOnlyList<ExportedFile>> every)
    {
        var stdout = r.InvocationConfiguration.Output;
        var stderr = r.InvocationConfiguration.Error;
        void Report(ExportedFile f)
        {
            stdout.WriteLine($"wrote {what} {f.Key} ({f.Summary}) to {f.Path}");
            foreach (var n in f.Notes) stderr.WriteLine($"syconn-store: note: {n}: {what} {f.Key} in {address}");
        }
        try
        {
            if (target.Key is { } k)
            {
                Report(one(k, target.Path));
            }
            else
            {
                var files = every(target.Path, Report);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"exported {files.Count} {(files.Count == 1 ? what : what + (what.EndsWith('h') ? "es" : "s"))} to {target.Path}"));
            }
        }
        catch (ExportInputException e)
        {
            throw new InputException(e.What, e.Location, e);
        }
        catch (KeyNotFoundException e)
        {
            throw new InputException(target.Key is { } k ? $"key {k} is not in the store" : e.Message, address, e);
        }
        return 0;
    }

    private static MeshFormat ParseMeshFormat(string text)
    {
        try { return MeshWriter.ParseFormat(text); }
        catch (ArgumentException e) { throw new UsageException(e.Message, "--format"); }
    }

    /// <summary>Parses <c>--scale X,Y,Z</c>: three finite numbers greater than 0.</summary>
    internal static (double X, double Y, double Z)? ParseScale(string? text)
    {
        if (text is null) return null;
        var parts = text.Split(',');
        var v = new double[3];
        bool ok = parts.Length == 3;
        for (int i = 0; ok && i < 3; i++)
            ok = double.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) && double.IsFinite(v[i]) && v[i] > 0;
        if (!ok) throw new UsageException($"--scale takes three numbers greater than 0, X,Y,Z (e.g. 10,10,25), not '{text}'", "--scale");
        return (v[0], v[1], v[2]);
    }
}
