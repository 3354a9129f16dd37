using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>The raw content of any SyConn storage file as one Python value, whatever store class it belongs to.</summary>
/// <remarks>Thread-safe (stateless).</remarks>
public static class RawFile
{
    /// <summary>
    /// Reads <paramref name="path"/> by its extension: an <c>.npz</c> is a dict from member name (without
    /// <c>.npy</c>, as numpy lists them, kept as str) to array, an <c>.npy</c> its array, anything else one pickle
    /// (a <c>.pkl</c> store file is a dict of its raw per-key entries).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="options">Limits of the pickle reader (null: defaults).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not what its extension says; the message names it and the offset.</exception>
    public static object Read(string path, PickleReadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var ext = Path.GetExtension(path);
        if (ext.Equals(".npz", StringComparison.OrdinalIgnoreCase))
        {
            var members = new PyDict();
            foreach (var kv in NpzFile.ReadAll(path)) members[kv.Key] = kv.Value;
            return members;
        }
        if (ext.Equals(".npy", StringComparison.OrdinalIgnoreCase)) return NpyFile.Read(path);
        var bytes = AtomicFile.ReadAllBytes(path) ?? throw new FileNotFoundException($"no such file: {path}", path);
        return Pickle.Load(bytes, options, path);
    }
}
