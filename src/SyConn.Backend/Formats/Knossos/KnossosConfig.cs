using System.Globalization;
using System.Text.RegularExpressions;
using Tomlyn;
using Tomlyn.Model;

namespace SyConn.Backend.Formats.Knossos;

/// <summary>Which kind of configuration file a <see cref="KnossosConfig"/> was read from.</summary>
public enum KnossosConfigKind
{
    /// <summary><c>&lt;name&gt;.pyk.conf</c> (pyKNOSSOS; what SyConn writes).</summary>
    PykConf,
    /// <summary><c>&lt;name&gt;.k.toml</c> (knossos_utils master).</summary>
    Toml,
    /// <summary>Legacy <c>mag1/knossos.conf</c>.</summary>
    LegacyConf,
}

/// <summary>
/// The geometry of a KNOSSOS segmentation dataset at mag 1, as read from one of its configuration
/// files: experiment name, boundary, cube shape, voxel scales and the root folder that holds the
/// <c>mag1/</c> cube tree. Immutable; thread-safe.
/// </summary>
/// <remarks>
/// <para>Parsing follows knossos_utils (see the KNOSSOS spec §4 and §5). Only local datasets are supported:
/// a remote (<c>http…</c>, <c>ftp_mode</c>) or neuroglancer-precomputed dataset is refused with a
/// <see cref="NotSupportedException"/>.</para>
/// <para>Everything here is pure: the parsers take the file's text and its path, and work out
/// <see cref="Root"/> from those strings alone (no file system, no working directory). A relative
/// <c>_BaseURL</c>/<c>URL</c> therefore stays relative. Finding and reading config files, and making
/// the paths absolute, is done by <c>SyConn.Backend.Storage.Knossos.KnossosConfigFiles</c>.</para>
/// </remarks>
public sealed partial class KnossosConfig
{
    /// <summary>The extension that marks the segmentation layer.</summary>
    public const string SegmentationExtension = ".seg.sz.zip";

    /// <summary>The default cube edge when a pyk.conf has no <c>_CubeSize</c>, and the fixed edge of legacy confs.</summary>
    public const int DefaultCubeEdge = 128;

    /// <summary>Creates a configuration from its parts. <paramref name="root"/> and <paramref name="configPath"/> are kept as given.</summary>
    /// <exception cref="ArgumentException">A value is out of range (empty name, non-positive boundary or cube edge, no scale).</exception>
    public KnossosConfig(string name, Xyz boundary, Xyz cubeShape, IReadOnlyList<(double X, double Y, double Z)> scales, string root,
        KnossosConfigKind kind, string? configPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentNullException.ThrowIfNull(scales);
        if (boundary.X <= 0 || boundary.Y <= 0 || boundary.Z <= 0)
            throw new ArgumentException($"dataset boundary must be positive on every axis, got {boundary}", nameof(boundary));
        if (cubeShape.X <= 0 || cubeShape.Y <= 0 || cubeShape.Z <= 0)
            throw new ArgumentException($"cube shape must be positive on every axis, got {cubeShape}", nameof(cubeShape));
        const long maxVoxels = int.MaxValue / 8;
        if (cubeShape.X > maxVoxels || cubeShape.Y > maxVoxels / cubeShape.X || cubeShape.Z > maxVoxels / cubeShape.X / cubeShape.Y)
            throw new ArgumentException($"cube shape {cubeShape} is too large: a decoded cube must stay below 2 GiB", nameof(cubeShape));
        if (name.IndexOfAny(['/', '\\', '\0']) >= 0 || name is "." or "..")
            throw new ArgumentException($"experiment name '{name}' must be one file-name component (it names the cube files)", nameof(name));
        Name = name;
        Boundary = boundary;
        CubeShape = cubeShape;
        Scales = scales.ToArray();
        Root = root;
        Kind = kind;
        ConfigPath = configPath;
    }

    /// <summary>The experiment name used in cube file names (not the folder name).</summary>
    public string Name { get; }

    /// <summary>The dataset extent at mag 1 in voxels (x, y, z); valid coordinates are <c>[0, Boundary)</c>.</summary>
    public Xyz Boundary { get; }

    /// <summary>The cube shape in voxels (x, y, z); may be non-cubic for toml datasets.</summary>
    public Xyz CubeShape { get; }

    /// <summary>Voxel sizes in nm, one (x, y, z) entry per mag; the first is mag 1. May be empty for pyk confs with <c>_ServerFormat = knossos</c>.</summary>
    public IReadOnlyList<(double X, double Y, double Z)> Scales { get; }

    /// <summary>
    /// The folder holding <c>mag1/</c>: absolute for configs from <c>KnossosConfigFiles</c>, a
    /// <c>KnossosDataset</c> or a <c>KnossosWriter</c>; as written or given otherwise.
    /// </summary>
    public string Root { get; }

    /// <summary>Which kind of file this was read from.</summary>
    public KnossosConfigKind Kind { get; }

    /// <summary>The path of the file this was read from, if any (absolute when read by <c>KnossosConfigFiles</c>).</summary>
    public string? ConfigPath { get; }

    /// <summary>Cube folder and file name for cube index (i, j, k) at mag 1, relative to <see cref="Root"/>.</summary>
    public string CubeRelativePath(long i, long j, long k)
    {
        string xs = "x" + i.ToString("D4", CultureInfo.InvariantCulture);
        string ys = "y" + j.ToString("D4", CultureInfo.InvariantCulture);
        string zs = "z" + k.ToString("D4", CultureInfo.InvariantCulture);
        return Path.Combine("mag1", xs, ys, zs, $"{Name}_mag1_{xs}_{ys}_{zs}{SegmentationExtension}");
    }

    /// <summary>The path of the mag-1 cube file with index (i, j, k): <see cref="Root"/> joined with <see cref="CubeRelativePath"/>.</summary>
    public string CubePath(long i, long j, long k) => Path.Combine(Root, CubeRelativePath(i, j, k));

    // ---------------------------------------------------------------- entry points

    /// <summary>Which kind of config a file of this name is (knossos_utils master's rule).</summary>
    /// <remarks><c>*.k.toml</c> → TOML; names ending in <c>.pyk.conf</c>, <c>.pyknossos.conf</c> or
    /// <c>ariadne.conf</c> → pyKNOSSOS conf; anything else → legacy <c>knossos.conf</c>.</remarks>
    /// <param name="fileName">A file name or path; only the last part is looked at.</param>
    public static KnossosConfigKind KindOf(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        string name = Path.GetFileName(fileName);
        if (name.EndsWith(".k.toml", StringComparison.Ordinal)) return KnossosConfigKind.Toml;
        if (name.EndsWith(".pyk.conf", StringComparison.Ordinal) || name.EndsWith(".pyknossos.conf", StringComparison.Ordinal)
            || name.EndsWith("ariadne.conf", StringComparison.Ordinal))
            return KnossosConfigKind.PykConf;
        return KnossosConfigKind.LegacyConf;
    }

    /// <summary>
    /// Parses the text of a config file, choosing the parser by the file's name (<see cref="KindOf"/>):
    /// <see cref="ParseToml"/>, <see cref="ParsePykConf"/> or <see cref="ParseLegacyConf"/>.
    /// </summary>
    /// <param name="text">The file content.</param>
    /// <param name="confPath">The file's path: its name selects the parser, its folder is the default root, and
    /// error messages name it. Pass an absolute path to get an absolute root.</param>
    /// <exception cref="InvalidDataException">The config is malformed or lacks a required key.</exception>
    /// <exception cref="NotSupportedException">The dataset is remote or neuroglancer-precomputed.</exception>
    public static KnossosConfig Parse(string text, string confPath)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentException.ThrowIfNullOrEmpty(confPath);
        return KindOf(confPath) switch
        {
            KnossosConfigKind.Toml => ParseToml(text, confPath),
            KnossosConfigKind.PykConf => ParsePykConf(text, confPath),
            _ => ParseLegacyConf(text, confPath),
        };
    }

    // ---------------------------------------------------------------- pyk.conf

    /// <summary>
    /// Parses a pyKNOSSOS conf (<c>&lt;name&gt;.pyk.conf</c>). Lines <c>[Dataset…]</c> start a section;
    /// other lines must be <c>key = value</c> (exactly space, '=', space) and everything else is ignored.
    /// <c>"</c> characters are removed (knossos_utils master). The section whose <c>_BaseExt</c> is
    /// <c>.seg.sz.zip</c> (leading dot optional) is used; without one, the last value of each key over the
    /// whole file is used (knossos_utils syconn2). <c>_CubeSize</c> defaults to 128³. Root = the conf's
    /// folder, or <c>_BaseURL</c> when given (<c>file://</c> or a plain path; a relative one is kept relative:
    /// knossos_utils resolves it against the working directory, as <c>KnossosConfigFiles</c> does).
    /// </summary>
    /// <param name="text">The file content.</param>
    /// <param name="confPath">The file's path (root folder and error messages).</param>
    /// <exception cref="InvalidDataException">A required key is missing or a value is malformed.</exception>
    /// <exception cref="NotSupportedException"><c>_BaseURL</c> is remote.</exception>
    public static KnossosConfig ParsePykConf(string text, string confPath)
    {
        var sections = new List<Dictionary<string, string>>();
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        Dictionary<string, string>? current = null;
        foreach (var raw in text.Replace("\"", "", StringComparison.Ordinal).Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (SectionLine().IsMatch(line))
            {
                current = new Dictionary<string, string>(StringComparer.Ordinal);
                sections.Add(current);
                continue;
            }
            int sep = line.IndexOf(" = ", StringComparison.Ordinal);
            if (sep <= 0) continue;
            string key = line[..sep], value = line[(sep + 3)..];
            if (key.Contains(' ', StringComparison.Ordinal)) continue;
            merged[key] = value;
            if (current is null)
            {
                current = new Dictionary<string, string>(StringComparer.Ordinal);
                sections.Add(current);
            }
            current[key] = value;
        }
        var chosen = sections.LastOrDefault(s => s.TryGetValue("_BaseExt", out var ext) && IsSegExtension(ext.Trim())) ?? merged;

        string Req(string key) => chosen.TryGetValue(key, out var v) && v.Trim().Length > 0
            ? v.Trim()
            : throw new InvalidDataException($"{confPath}: required key '{key}' is missing in the pyKNOSSOS conf");

        string name = Req("_BaseName");
        var boundary = ParseTriple(Req("_Extent"), confPath, "_Extent");
        var cube = chosen.TryGetValue("_CubeSize", out var cs) && cs.Trim().Length > 0
            ? ParseTriple(cs, confPath, "_CubeSize")
            : new Xyz(DefaultCubeEdge, DefaultCubeEdge, DefaultCubeEdge);
        var scales = new List<(double, double, double)>();
        if (chosen.TryGetValue("_DataScale", out var ds))
        {
            var nums = ParseNumbers(ds, confPath, "_DataScale");
            if (nums.Count % 3 != 0)
                throw new InvalidDataException($"{confPath}: key '_DataScale' holds {nums.Count} numbers; expected x,y,z triples");
            for (int i = 0; i < nums.Count; i += 3) scales.Add((nums[i], nums[i + 1], nums[i + 2]));
        }
        bool knossosFormat = chosen.TryGetValue("_ServerFormat", out var sf) && sf.Trim() == "knossos";
        if (scales.Count == 0 && !knossosFormat)
            throw new InvalidDataException($"{confPath}: required key '_DataScale' (at least one x,y,z triple) is missing in the pyKNOSSOS conf");
        string root = FolderOf(confPath);
        if (chosen.TryGetValue("_BaseURL", out var url) && url.Trim().Length > 0)
            root = ResolveUrl(url.Trim(), confPath, "_BaseURL");
        return Make(name, boundary, cube, scales, root, KnossosConfigKind.PykConf, confPath);
    }

    private static bool IsSegExtension(string ext) => ext == SegmentationExtension || ext == SegmentationExtension[1..];

    [GeneratedRegex(@"^\[Dataset( \d+)?\]")]
    private static partial Regex SectionLine();

    // ---------------------------------------------------------------- legacy knossos.conf

    /// <summary>
    /// Parses a legacy <c>knossos.conf</c>. On each line the first run of letters, spaces and underscores
    /// directly followed by a number and <c>;</c>, a double-quoted <c>[A-Za-z0-9._/-]</c> string and
    /// <c>;</c>, or just <c>;</c> gives one entry; the key keeps its trailing space (<c>"boundary x "</c>).
    /// Required: <c>experiment name</c> (quoted), <c>boundary x/y/z</c>, <c>scale x/y/z</c>. A name ending
    /// in <c>mag1</c> loses its last 5 characters. The cube edge is always 128. Root = the folder above the
    /// conf when the conf sits in a <c>mag&lt;N&gt;</c> folder, else the conf's folder.
    /// </summary>
    /// <param name="text">The file content.</param>
    /// <param name="confPath">The file's path (root folder and error messages).</param>
    /// <exception cref="InvalidDataException">A required key is missing or a value is malformed.</exception>
    /// <exception cref="NotSupportedException">The conf describes an HTTP dataset (<c>ftp_mode</c>).</exception>
    public static KnossosConfig ParseLegacyConf(string text, string confPath)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var numeric = new HashSet<string>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("ftp_mode", StringComparison.Ordinal))
                throw new NotSupportedException($"{confPath}: line {lineNo}: 'ftp_mode' datasets (HTTP) are not supported; only local cube folders are");
            var m = LegacyEntry().Match(line);
            if (!m.Success) continue;
            string key = m.Groups["key"].Value;
            if (m.Groups["num"].Success) { values[key] = m.Groups["num"].Value; numeric.Add(key); }
            else if (m.Groups["str"].Success) { values[key] = m.Groups["str"].Value; numeric.Remove(key); }
            else { values[key] = ""; numeric.Remove(key); }
        }
        string ReqStr(string key) => values.TryGetValue(key, out var v) && !numeric.Contains(key) && v.Length > 0
            ? v
            : throw new InvalidDataException($"{confPath}: required key '{key}' (a double-quoted string) is missing in the legacy knossos.conf");
        double ReqNum(string key)
        {
            if (!values.TryGetValue(key, out var v) || !numeric.Contains(key))
                throw new InvalidDataException($"{confPath}: required key '{key}' (a number) is missing in the legacy knossos.conf");
            return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                ? d
                : throw new InvalidDataException($"{confPath}: key '{key}' has value '{v}', expected a number");
        }
        string name = ReqStr("experiment name ");
        if (name.EndsWith("mag1", StringComparison.Ordinal) && name.Length > 5) name = name[..^5];
        var boundary = new Xyz(ToInt(ReqNum("boundary x "), confPath, "boundary x "), ToInt(ReqNum("boundary y "), confPath, "boundary y "),
            ToInt(ReqNum("boundary z "), confPath, "boundary z "));
        var scale = (ReqNum("scale x "), ReqNum("scale y "), ReqNum("scale z "));
        string folder = FolderOf(confPath);
        string root = MagFolder().IsMatch(Path.GetFileName(folder)) ? FolderOf(folder) : folder;
        return Make(name, boundary, new Xyz(DefaultCubeEdge, DefaultCubeEdge, DefaultCubeEdge), [scale], root, KnossosConfigKind.LegacyConf, confPath);
    }

    [GeneratedRegex("(?<key>[A-Za-z _]+)(?:(?<num>[0-9.]+)|\"(?<str>[A-Za-z0-9._/-]+)\")?;")]
    private static partial Regex LegacyEntry();

    [GeneratedRegex("mag[0-9]+$")]
    private static partial Regex MagFolder();

    // ---------------------------------------------------------------- k.toml

    /// <summary>
    /// Parses a <c>&lt;name&gt;.k.toml</c>: the first <c>[[Layer]]</c> whose <c>FileExtension</c> lists
    /// <c>.seg.sz.zip</c> and that is local (no <c>URL</c>, a <c>file://</c> URL or a plain path) is used.
    /// Needs <c>Name</c>, <c>Extent_px</c> and <c>CubeShape_px</c> (may be non-cubic); <c>VoxelSize_nm</c>
    /// gives the scales. Root = the toml's folder or the layer's <c>URL</c> (a relative one is kept relative;
    /// see <see cref="ParsePykConf"/>).
    /// </summary>
    /// <param name="text">The file content.</param>
    /// <param name="confPath">The file's path (root folder and error messages).</param>
    /// <exception cref="InvalidDataException">The TOML is malformed, has no segmentation layer, or lacks a required key.</exception>
    /// <exception cref="NotSupportedException">The only segmentation layers are remote or neuroglancer-precomputed.</exception>
    public static KnossosConfig ParseToml(string text, string confPath)
    {
        TomlTable doc;
        try
        {
            doc = TomlSerializer.Deserialize<TomlTable>(text)
                ?? throw new InvalidDataException($"{confPath}: empty TOML document");
        }
        catch (TomlException e)
        {
            throw new InvalidDataException($"{confPath}: not valid TOML: {e.Message}", e);
        }
        if (!doc.TryGetValue("Layer", out var layersObj) || layersObj is not TomlTableArray layers)
            throw new InvalidDataException($"{confPath}: no [[Layer]] tables in the TOML config");
        string? refusal = null;
        int index = -1;
        foreach (var layer in layers)
        {
            index++;
            if (!layer.TryGetValue("FileExtension", out var extObj) || extObj is not TomlArray exts
                || !exts.OfType<string>().Any(e => e == SegmentationExtension))
                continue;
            string where = $"{confPath}: [[Layer]] #{index}";
            string? url = layer.TryGetValue("URL", out var u) ? u as string : null;
            string? format = layer.TryGetValue("ServerFormat", out var f) ? f as string : null;
            if (format == "precomputed" || (format is null && url is not null && url.EndsWith("info", StringComparison.Ordinal)))
            {
                refusal ??= $"{where}: neuroglancer-precomputed segmentation layers are not supported";
                continue;
            }
            if (format is not null && format != "knossos")
                throw new InvalidDataException($"{where}: ServerFormat '{format}' is unknown; expected 'knossos' or 'precomputed'");
            if (url is not null && IsRemote(url))
            {
                refusal ??= $"{where}: remote segmentation layer '{url}' is not supported; only local cube folders are";
                continue;
            }
            string name = layer.TryGetValue("Name", out var n) && n is string s && s.Length > 0
                ? s : throw new InvalidDataException($"{where}: required key 'Name' (a string) is missing");
            var boundary = TomlTriple(layer, "Extent_px", where, confPath);
            var cube = TomlTriple(layer, "CubeShape_px", where, confPath);
            var scales = new List<(double, double, double)>();
            if (layer.TryGetValue("VoxelSize_nm", out var vs) && vs is TomlArray vsa)
            {
                foreach (var item in vsa)
                {
                    if (item is not TomlArray t || t.Count != 3)
                        throw new InvalidDataException($"{where}: 'VoxelSize_nm' must be a list of [x, y, z] numbers");
                    scales.Add((TomlNumber(t[0], where, "VoxelSize_nm"), TomlNumber(t[1], where, "VoxelSize_nm"), TomlNumber(t[2], where, "VoxelSize_nm")));
                }
            }
            string root = url is null ? FolderOf(confPath) : ResolveUrl(url, confPath, "URL");
            return Make(name, boundary, cube, scales, root, KnossosConfigKind.Toml, confPath);
        }
        if (refusal is not null) throw new NotSupportedException(refusal);
        throw new InvalidDataException($"{confPath}: the TOML config contains no segmentation layer (no [[Layer]] with '{SegmentationExtension}' in FileExtension)");
    }

    private static Xyz TomlTriple(TomlTable layer, string key, string where, string confPath)
    {
        if (!layer.TryGetValue(key, out var v) || v is not TomlArray a || a.Count != 3)
            throw new InvalidDataException($"{where}: required key '{key}' ([x, y, z] integers) is missing or malformed");
        return new Xyz(ToInt(TomlNumber(a[0], where, key), confPath, key), ToInt(TomlNumber(a[1], where, key), confPath, key),
            ToInt(TomlNumber(a[2], where, key), confPath, key));
    }

    private static double TomlNumber(object? v, string where, string key) => v switch
    {
        long l => l,
        int i => i,
        double d => d,
        _ => throw new InvalidDataException($"{where}: key '{key}' holds '{v}', expected a number"),
    };

    // ---------------------------------------------------------------- helpers

    private static KnossosConfig Make(string name, Xyz boundary, Xyz cube, List<(double, double, double)> scales, string root,
        KnossosConfigKind kind, string confPath)
    {
        if (boundary.X <= 0 || boundary.Y <= 0 || boundary.Z <= 0)
            throw new InvalidDataException($"{confPath}: dataset boundary {boundary} must be positive on every axis");
        if (cube.X <= 0 || cube.Y <= 0 || cube.Z <= 0)
            throw new InvalidDataException($"{confPath}: cube shape {cube} must be positive on every axis");
        // Each edge is below 2^53, so the product is taken in steps that cannot overflow.
        long limit = Math.Min(ReadLimits.Default.MaxCubeBytes, int.MaxValue);
        if (cube.X > limit / 8 || cube.Y > limit / 8 / cube.X || cube.Z > limit / 8 / cube.X / cube.Y)
            throw new InvalidDataException(
                $"{confPath}: cube shape {cube} is too large: a decoded cube must stay within {limit} bytes (ReadLimits.MaxCubeBytes, and below 2 GiB)");
        CheckName(name, confPath);
        return new KnossosConfig(name, boundary, cube, scales, root, kind, confPath);
    }

    /// <summary>
    /// The experiment name becomes part of every cube's file name (<c>&lt;name&gt;_mag1_x…</c>): a name with a path
    /// separator, a NUL or a <c>..</c> would build paths outside the dataset, so it is refused.
    /// </summary>
    private static void CheckName(string name, string confPath)
    {
        foreach (char c in name)
            if (c is '/' or '\\' or '\0' || char.IsControl(c))
                throw new InvalidDataException(
                    $"{confPath}: experiment name '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' holds '{(c == '\0' ? "\\0" : c.ToString())}' (U+{(int)c:X4}); it must be one file-name component, without path separators or control characters");
        if (name is "." or ".." || name.Trim().Length == 0)
            throw new InvalidDataException($"{confPath}: experiment name '{name}' cannot name cube files");
    }

    private static bool IsRemote(string url) =>
        url.StartsWith("http", StringComparison.OrdinalIgnoreCase) || url.StartsWith("ftp", StringComparison.OrdinalIgnoreCase)
        || (url.Contains("://", StringComparison.Ordinal) && !url.StartsWith("file://", StringComparison.OrdinalIgnoreCase));

    private static string ResolveUrl(string url, string confPath, string key)
    {
        if (IsRemote(url))
            throw new NotSupportedException($"{confPath}: {key} '{url}' points to a remote dataset; only local cube folders are supported");
        string p = url.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? url["file://".Length..] : url;
        if (p.Length == 0) throw new InvalidDataException($"{confPath}: {key} '{url}' names no folder");
        return p; // a relative folder stays relative here; knossos_utils takes it relative to the working directory
    }

    /// <summary>The folder part of <paramref name="path"/> as a string operation; <c>.</c> when there is none.</summary>
    private static string FolderOf(string path)
    {
        string? dir = Path.GetDirectoryName(path);
        return string.IsNullOrEmpty(dir) ? "." : dir;
    }

    private static Xyz ParseTriple(string value, string confPath, string key)
    {
        var nums = ParseNumbers(value, confPath, key);
        if (nums.Count != 3) throw new InvalidDataException($"{confPath}: key '{key}' = '{value.Trim()}', expected three numbers x,y,z");
        return new Xyz(ToInt(nums[0], confPath, key), ToInt(nums[1], confPath, key), ToInt(nums[2], confPath, key));
    }

    private static List<double> ParseNumbers(string value, string confPath, string key)
    {
        var list = new List<double>();
        foreach (var part in value.Split(','))
        {
            var t = part.Trim();
            if (t.Length == 0) continue;
            if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                throw new InvalidDataException($"{confPath}: key '{key}' holds '{t}', expected a number");
            list.Add(d);
        }
        return list;
    }

    private static long ToInt(double d, string confPath, string key)
    {
        if (d != Math.Floor(d) || Math.Abs(d) > 1L << 52)
            throw new InvalidDataException($"{confPath}: key '{key}' holds {d.ToString(CultureInfo.InvariantCulture)}, expected an integer voxel count");
        return (long)d;
    }
}
