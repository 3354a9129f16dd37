using SyConn.Backend.Formats.Knossos;

namespace SyConn.Backend.Storage.Knossos;

/// <summary>
/// Finds and reads the configuration file of a KNOSSOS dataset on disk: the file side of the pure
/// <see cref="KnossosConfig"/> parsers. Every config returned here has an absolute
/// <see cref="KnossosConfig.Root"/> and <see cref="KnossosConfig.ConfigPath"/>.
/// </summary>
/// <remarks>Thread-safe. Relative paths, and relative <c>_BaseURL</c>/<c>URL</c> values in the files,
/// resolve against the process working directory at the time of the call, as in knossos_utils.</remarks>
public static class KnossosConfigFiles
{
    /// <summary>
    /// Opens the configuration of a dataset given a config file or a dataset folder.
    /// </summary>
    /// <remarks>
    /// <para>A <b>file</b> is used as given and dispatched on its name (<see cref="KnossosConfig.KindOf"/>):
    /// <c>*.k.toml</c> → TOML; names ending in <c>.pyk.conf</c>, <c>.pyknossos.conf</c> or
    /// <c>ariadne.conf</c> → pyKNOSSOS conf; anything else → legacy <c>knossos.conf</c>.</para>
    /// <para>A <b>folder</b> resolves in this order (SyConn's <c>kd_factory</c>, plus our toml step):
    /// 1. exactly one <c>*.pyk.conf</c> directly in the folder;
    /// 2. otherwise exactly one <c>*.k.toml</c> directly in the folder (not done upstream);
    /// 3. otherwise <c>mag1/knossos.conf</c>;
    /// 4. otherwise a <see cref="FileNotFoundException"/>. Two or more files of one kind skip that step,
    /// as upstream does for pyk confs.</para>
    /// </remarks>
    /// <exception cref="FileNotFoundException">The path does not exist, or the folder holds no usable config.</exception>
    /// <exception cref="InvalidDataException">The config is malformed or lacks a required key.</exception>
    /// <exception cref="NotSupportedException">The dataset is remote (HTTP) or neuroglancer-precomputed.</exception>
    public static KnossosConfig Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path)) return FromFile(path);
        if (!Directory.Exists(path))
            throw new FileNotFoundException($"KNOSSOS dataset or config not found: {path}", path);
        var pyk = Directory.GetFiles(path, "*.pyk.conf", SearchOption.TopDirectoryOnly);
        if (pyk.Length == 1) return FromFile(pyk[0]);
        var toml = Directory.GetFiles(path, "*.k.toml", SearchOption.TopDirectoryOnly);
        if (toml.Length == 1) return FromFile(toml[0]);
        var legacy = Path.Combine(path, "mag1", "knossos.conf");
        if (File.Exists(legacy)) return FromFile(legacy);
        throw new FileNotFoundException(
            $"no KNOSSOS config found in {path}: expected exactly one *.pyk.conf (found {pyk.Length}), exactly one *.k.toml (found {toml.Length}) or mag1/knossos.conf",
            path);
    }

    /// <summary>Reads one config file, dispatching on its name (see <see cref="Open"/>).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The config is malformed or lacks a required key.</exception>
    /// <exception cref="NotSupportedException">The dataset is remote or neuroglancer-precomputed.</exception>
    public static KnossosConfig FromFile(string file)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        if (!File.Exists(file)) throw new FileNotFoundException($"KNOSSOS config not found: {file}", file);
        string text = File.ReadAllText(file);
        return MakeAbsolute(KnossosConfig.Parse(text, Path.GetFullPath(file)));
    }

    /// <summary><see cref="KnossosConfig.ParsePykConf"/> with the root and config path made absolute (a relative <c>_BaseURL</c> against the working directory).</summary>
    /// <inheritdoc cref="KnossosConfig.ParsePykConf" path="/exception"/>
    public static KnossosConfig ParsePykConf(string text, string confPath) =>
        MakeAbsolute(KnossosConfig.ParsePykConf(text, Path.GetFullPath(confPath)));

    /// <summary><see cref="KnossosConfig.ParseLegacyConf"/> with the root and config path made absolute.</summary>
    /// <inheritdoc cref="KnossosConfig.ParseLegacyConf" path="/exception"/>
    public static KnossosConfig ParseLegacyConf(string text, string confPath) =>
        MakeAbsolute(KnossosConfig.ParseLegacyConf(text, Path.GetFullPath(confPath)));

    /// <summary><see cref="KnossosConfig.ParseToml"/> with the root and config path made absolute (a relative <c>URL</c> against the working directory).</summary>
    /// <inheritdoc cref="KnossosConfig.ParseToml" path="/exception"/>
    public static KnossosConfig ParseToml(string text, string confPath) =>
        MakeAbsolute(KnossosConfig.ParseToml(text, Path.GetFullPath(confPath)));

    /// <summary><paramref name="config"/> itself when its paths are absolute and normalised, else a copy whose
    /// <see cref="KnossosConfig.Root"/> and <see cref="KnossosConfig.ConfigPath"/> are, resolved against the working directory.</summary>
    internal static KnossosConfig MakeAbsolute(KnossosConfig config)
    {
        string root = Path.GetFullPath(config.Root);
        string? confPath = config.ConfigPath is null ? null : Path.GetFullPath(config.ConfigPath);
        if (root == config.Root && confPath == config.ConfigPath) return config;
        return new KnossosConfig(config.Name, config.Boundary, config.CubeShape, config.Scales, root, config.Kind, confPath);
    }
}
