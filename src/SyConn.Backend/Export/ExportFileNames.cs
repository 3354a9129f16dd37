using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Export;

/// <summary>
/// File names for exported entries: <c>&lt;key&gt;.&lt;ext&gt;</c>, the key in the command line's syntax made safe
/// for a file name, so that an export of every key into a folder never writes outside it.
/// </summary>
/// <remarks>
/// <para>An int key is its decimal (<c>5.ply</c>, <c>-3.ply</c>); a str key is <c>str_</c> and the text
/// (<c>str_cell.ply</c>); a tuple key is <c>tuple_</c> and its items joined by commas (<c>tuple_1,str_a.ply</c>).
/// In str text every character but ASCII letters, digits and <c>- _ . + =</c> is written as <c>%XX</c> of its
/// UTF-8 bytes (so <c>/</c>, <c>\</c>, <c>,</c>, <c>%</c>, <c>:</c>, spaces and control characters never reach the
/// name). Different keys get different names; a name that would be longer than 200 bytes is cut and ends in a
/// hash of the whole key.</para>
/// <para>Names never contain a path separator and are never <c>.</c> or <c>..</c>; <see cref="PathIn"/> checks
/// the joined path once more.</para>
/// </remarks>
public static class ExportFileNames
{
    private const int MaxStem = 200;

    /// <summary>The file name for <paramref name="key"/> with extension <paramref name="extension"/> (no dot).</summary>
    public static string For(StoreKey key, string extension)
    {
        ArgumentException.ThrowIfNullOrEmpty(extension);
        string stem = Stem(key.PythonValue);
        if (Encoding.UTF8.GetByteCount(stem) > MaxStem)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(stem)))[..16];
            stem = stem[..(MaxStem - 17)] + "~" + hash; // the stem is ASCII: one byte per char
        }
        return stem + "." + Escape(extension);
    }

    /// <summary>
    /// The path of <paramref name="key"/>'s file inside <paramref name="directory"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The joined path would not be directly inside the folder (cannot happen with names from <see cref="For"/>).</exception>
    public static string PathIn(string directory, StoreKey key, string extension)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var name = For(key, extension);
        var dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var full = Path.GetFullPath(Path.Combine(dir, name));
        if (name is "." or ".." || name.Contains('/') || name.Contains('\\') || !string.Equals(Path.GetDirectoryName(full), dir, StringComparison.Ordinal))
            throw new InvalidOperationException($"the file name '{name}' for key {key} is not inside {dir}");
        return full;
    }

    private static string Stem(object key) => key switch
    {
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger b => b.ToString(CultureInfo.InvariantCulture),
        string s => "str_" + Escape(s),
        PyTuple t => "tuple_" + string.Join(",", t.Select(Item)),
        _ => "key_" + Escape(PyRepr.Repr(key)),
    };

    private static string Item(object? item) => item switch
    {
        PyTuple => "(" + Stem(item) + ")",
        null => "None",
        _ => Stem(item),
    };

    /// <summary>Keeps ASCII letters, digits and <c>- _ . + =</c>; everything else becomes <c>%XX</c> per UTF-8 byte.</summary>
    internal static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        Span<byte> buf = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '_' or '.' or '+' or '=')
            {
                sb.Append(c);
                continue;
            }
            // A surrogate pair is one code point; a lone surrogate is written as its UTF-16 unit so names stay distinct.
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int len = new Rune(c, text[++i]).EncodeToUtf8(buf);
                foreach (var b in buf[..len]) sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            else if (char.IsSurrogate(c))
            {
                sb.Append("%u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            }
            else
            {
                int len = new Rune(c).EncodeToUtf8(buf);
                foreach (var b in buf[..len]) sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return sb.ToString();
    }
}
