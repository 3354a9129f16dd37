namespace SyConn.Backend.Storage;

/// <summary>Opening files for reading with one error convention: a missing file (or folder) is a
/// <see cref="FileNotFoundException"/> that names the path.</summary>
internal static class ReadFiles
{
    /// <summary>Opens <paramref name="path"/> for reading (others may read it too).</summary>
    /// <exception cref="FileNotFoundException">The file or one of its folders does not exist.</exception>
    internal static FileStream Open(string path, int bufferSize, FileOptions options = FileOptions.None)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize, options);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"Could not find file '{Path.GetFullPath(path)}' (a folder on the way is missing).", path, e);
        }
    }
}
