using System.Globalization;
using System.Text;

namespace SyConn.Backend.Formats.Knossos;

/// <summary>
/// The text of the KNOSSOS configuration files SyConn and knossos_utils write: <c>&lt;name&gt;.pyk.conf</c>,
/// legacy <c>mag1/knossos.conf</c> and <c>&lt;name&gt;.k.toml</c>. Pure functions; thread-safe. The files are
/// written by <c>SyConn.Backend.Storage.Knossos.KnossosWriter.Create</c>.
/// </summary>
public static class KnossosConfigText
{
    /// <summary>The <c>.pyk.conf</c> text SyConn writes (knossos_utils syconn2 <c>initialize_without_conf</c>).</summary>
    public static string PykConfText(string name, Xyz boundary, int cubeEdge, (double X, double Y, double Z) scale)
    {
        string Section(string description, string ext) =>
            "[Dataset]\n" +
            $"_BaseName = {name}\n" +
            "_ServerFormat = pyknossos\n" +
            $"_DataScale = {Trunc(scale.X)},{Trunc(scale.Y)},{Trunc(scale.Z)}\n" +
            $"_Extent = {boundary.X},{boundary.Y},{boundary.Z}\n" +
            $"_Description = {description}\n" +
            $"_BaseExt = {ext}\n" +
            $"_CubeSize = {cubeEdge},{cubeEdge},{cubeEdge}\n";
        return Section("\"streaming optimized\"", ".jpg") + "\n"
            + Section("original quality", ".raw") + "    \n\n"
            + Section("original quality", KnossosConfig.SegmentationExtension) + "    ";
    }

    /// <summary>The legacy <c>mag1/knossos.conf</c> text (name gets the <c>_mag1</c> suffix, scales with two decimals).</summary>
    public static string LegacyConfText(string name, Xyz boundary, (double X, double Y, double Z) scale)
    {
        var ci = CultureInfo.InvariantCulture;
        return $"experiment name \"{name}_mag1\";\n" +
               $"boundary x {boundary.X};\nboundary y {boundary.Y};\nboundary z {boundary.Z};\n" +
               $"scale x {scale.X.ToString("F2", ci)};\nscale y {scale.Y.ToString("F2", ci)};\nscale z {scale.Z.ToString("F2", ci)};\n" +
               "magnification 1;";
    }

    /// <summary>The <c>.k.toml</c> text knossos_utils master writes for a knossos-format segmentation layer.</summary>
    public static string TomlText(string name, Xyz boundary, Xyz cube, IReadOnlyList<(double X, double Y, double Z)> scales)
    {
        ArgumentNullException.ThrowIfNull(scales);
        var sb = new StringBuilder();
        sb.Append("[[Layer]]\n");
        sb.Append($"Name = '{name}'\n");
        sb.Append("ServerFormat = 'knossos'\n");
        sb.Append($"FileExtension = ['{KnossosConfig.SegmentationExtension}']\n");
        sb.Append($"Extent_px = [{boundary.X}, {boundary.Y}, {boundary.Z}]\n");
        sb.Append("VoxelSize_nm = [")
          .AppendJoin(", ", scales.Select(s => $"[{PyFloat(s.X)}, {PyFloat(s.Y)}, {PyFloat(s.Z)}]"))
          .Append("]\n");
        sb.Append($"CubeShape_px = [{cube.X}, {cube.Y}, {cube.Z}]\n");
        sb.Append("DataType = 'uint64'\n");
        sb.Append("NumChannels = 1\n");
        sb.Append("Description = ''\n");
        return sb.ToString();
    }

    /// <summary>
    /// The per-mag voxel sizes knossos_utils master derives: starting at mag 1, x and y double each step
    /// and z doubles when it is finer than the new x, until the cube grid is smaller than 2 on every axis.
    /// </summary>
    public static List<(double X, double Y, double Z)> TomlScales(Xyz boundary, Xyz cube, (double X, double Y, double Z) scale)
    {
        var list = new List<(double, double, double)> { scale };
        var s = scale;
        bool Coarse((double X, double Y, double Z) t) =>
            boundary.X * scale.X / t.X / cube.X < 2 && boundary.Y * scale.Y / t.Y / cube.Y < 2 && boundary.Z * scale.Z / t.Z / cube.Z < 2;
        while (!Coarse(s) && list.Count < 64)
        {
            s = (s.X * 2, s.Y * 2, s.Z);
            if (s.Z < s.X) s.Z *= 2;
            list.Add(s);
        }
        return list;
    }

    private static string Trunc(double d) => ((long)Math.Truncate(d)).ToString(CultureInfo.InvariantCulture);

    private static string PyFloat(double d)
    {
        if (double.IsFinite(d) && d == Math.Floor(d) && Math.Abs(d) < 1e16) return d.ToString("F1", CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture);
    }
}
