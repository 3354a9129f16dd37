using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>syconn-store load-seg DATASET --offset X,Y,Z --size X,Y,Z [--json]</c>: loads a mag-1 box of a
/// KNOSSOS segmentation dataset (folder or config file) and prints its shape (z, y, x), checksums,
/// non-zero count and per-ID voxel counts (IDs as decimal strings in JSON).
/// </summary>
public static class LoadSegCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var dataset = new Argument<string>("dataset") { Description = "Dataset folder, or a .pyk.conf / .k.toml / knossos.conf file." };
        var offset = new Option<string>("--offset") { Description = "Box lower corner x,y,z (negative values: --offset=-20,0,0).", Required = true };
        var size = new Option<string>("--size") { Description = "Box size x,y,z (all positive).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON document." };
        var cmd = new Command("load-seg", "Load a box of a KNOSSOS segmentation (mag 1) and print checksums and label counts.") { dataset, offset, size, json };
        cmd.SetAction((ParseResult r) =>
        {
            var off = ParseTriple(r.GetValue(offset)!, "--offset");
            var sz = ParseTriple(r.GetValue(size)!, "--size");
            using var ds = KnossosDataset.Open(r.GetValue(dataset)!, new KnossosDatasetOptions { CacheBytes = 0 });
            var seg = ds.LoadSeg(off, sz);
            var s = SegmentationSummary.Compute(seg.AsSpan<ulong>(), sz);
            var output = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                using var ms = new MemoryStream();
                using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
                {
                    w.WriteStartObject();
                    w.WriteString("dataset", ds.Root);
                    w.WriteString("name", ds.Name);
                    WriteArray(w, "offset_xyz", off.ToArray());
                    WriteArray(w, "size_xyz", sz.ToArray());
                    WriteArray(w, "result_shape_zyx", s.ShapeZyx);
                    w.WriteString("dtype", "uint64");
                    w.WriteString("sha256_zyx", s.Sha256Zyx);
                    w.WriteString("sha256_xyz", s.Sha256Xyz);
                    w.WriteNumber("nonzero", s.Nonzero);
                    w.WriteStartObject("counts");
                    foreach (var (id, n) in s.Counts) w.WriteNumber(id.ToString(CultureInfo.InvariantCulture), n);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                output.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            }
            else
            {
                output.WriteLine($"dataset: {ds.Root} (name {ds.Name}, boundary {ds.Boundary}, cube {ds.CubeShape})");
                output.WriteLine($"result_shape_zyx: ({string.Join(", ", s.ShapeZyx)})");
                output.WriteLine($"sha256_zyx: {s.Sha256Zyx}");
                output.WriteLine($"sha256_xyz: {s.Sha256Xyz}");
                output.WriteLine($"nonzero: {s.Nonzero}");
                output.WriteLine("counts:");
                foreach (var (id, n) in s.Counts) output.WriteLine($"  {id}: {n}");
            }
            return 0;
        });
        return cmd;
    }

    private static void WriteArray(Utf8JsonWriter w, string name, long[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    private static Xyz ParseTriple(string text, string option)
    {
        var parts = text.Split(',');
        if (parts.Length != 3)
            throw new UsageException($"{option} needs three comma-separated integers x,y,z, got '{text}'", option);
        var v = new long[3];
        for (int i = 0; i < 3; i++)
            if (!long.TryParse(parts[i].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v[i]))
                throw new UsageException($"{option}: '{parts[i]}' is not an integer", option);
        return new Xyz(v[0], v[1], v[2]);
    }
}
