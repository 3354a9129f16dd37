using System.Text;
using System.Text.RegularExpressions;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// The layer rule of the architecture note: <c>src/SyConn.Backend/Formats</c> holds pure codecs on spans and
/// streams; only Storage touches the file system. Scans the sources (comments, XML docs and string literals
/// blanked out) for file-system access.
/// </summary>
public sealed partial class LayerRulesTests
{
    /// <summary>What counts as file-system access (or as depending on the working directory).</summary>
    private static readonly (string What, Regex Pattern)[] FileSystemAccess =
    [
        ("System.IO.File", new Regex(@"\bFile\s*\.", RegexOptions.Compiled)),
        ("System.IO.Directory", new Regex(@"\bDirectory\s*\.", RegexOptions.Compiled)),
        ("a file or folder type", new Regex(@"\b(FileStream|FileInfo|DirectoryInfo|FileSystemInfo|FileSystemWatcher|DriveInfo|SafeFileHandle|MemoryMappedFile|RandomAccess)\b", RegexOptions.Compiled)),
        ("a path that depends on the file system or working directory", new Regex(@"\bPath\s*\.\s*(GetFullPath|GetTempPath|GetTempFileName|Exists)\b", RegexOptions.Compiled)),
        ("the working directory", new Regex(@"\bEnvironment\s*\.\s*CurrentDirectory\b", RegexOptions.Compiled)),
        ("zip file helpers that take paths", new Regex(@"\bZipFile\s*\.|\b(ExtractToFile|ExtractToDirectory|CreateEntryFromFile)\b", RegexOptions.Compiled)),
        ("a static import of a file-system class", new Regex(@"\busing\s+static\s+(global::)?System\.IO\.(File|Directory|Path)\b", RegexOptions.Compiled)),
    ];

    [Fact]
    public void Formats_sources_do_no_file_system_access()
    {
        Assert.True(Shared.RepoRoot is not null, $"no repository root (a folder holding .git) above {AppContext.BaseDirectory}");
        string formats = Path.Combine(Shared.RepoRoot!, "src", "SyConn.Backend", "Formats");
        Assert.True(Directory.Exists(formats), $"{formats} does not exist");
        var files = Directory.GetFiles(formats, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(files.Count >= 10, $"only {files.Count} source files under {formats}; is this the right folder?");

        var violations = new List<string>();
        foreach (var file in files)
            violations.AddRange(Violations(File.ReadAllText(file)).Select(v =>
                $"{Path.GetRelativePath(Shared.RepoRoot!, file)}:{v.Line}: {v.What}: {v.Text}"));
        Assert.True(violations.Count == 0,
            "Formats must stay pure (files belong in src/SyConn.Backend/Storage):\n" + string.Join("\n", violations));
    }

    [Fact]
    public void The_scan_finds_access_in_code_and_ignores_comments_docs_and_strings()
    {
        const string source = """"
            /// <summary>Reads with <see cref="File.ReadAllBytes"/>; see Directory.GetFiles.</summary>
            // File.Exists(path) in a comment
            /* FileStream in a block comment,
               over two lines: Path.GetFullPath(x) */
            class C
            {
                string a = "File.Open(x) in a string";
                string b = @"Directory.Delete(""x"") verbatim";
                string c = $"interpolated {File.Exists(p)} hole";
                string d = $$"""raw {{Path.GetFullPath(q)}} and File.Delete(z) as text""";
                char e = '"';
                string f = Path.Combine("a", "b") + Path.GetFileName("c") + NpyFile.Read("d") + KnossosConfigFiles.Open("e");
                void G() => RandomAccess.Read(h, buf, 0); // and a comment after code: File.Move
                long H = new FileInfo("x").Length;
            }
            """";
        var found = Violations(source).Select(v => (v.Line, v.What)).ToList();
        Assert.Equal(
        [
            (9, "System.IO.File"),
            (10, "a path that depends on the file system or working directory"),
            (13, "a file or folder type"),
            (14, "a file or folder type"),
        ], found);
    }

    [Fact]
    public void Blanking_keeps_lines_and_code_in_place()
    {
        const string source = "int x = 1; // c\n/* a\nb */ var s = \"q\\\"{\" + $@\"{y}\"\"z\";\nchar c = '\\'';";
        string code = CodeOnly(source);
        Assert.Equal(source.Length, code.Length);
        Assert.Equal(source.Count(ch => ch == '\n'), code.Count(ch => ch == '\n'));
        var lines = code.Split('\n');
        Assert.Equal("int x = 1;", lines[0].TrimEnd());
        Assert.Equal("", lines[1].Trim());
        Assert.Equal("var s = \"    \" + $@\"{y}   \";", lines[2].Trim());
        Assert.Equal("char c = '  ';", lines[3].Trim());
    }

    private static IEnumerable<(int Line, string What, string Text)> Violations(string source)
    {
        var code = CodeOnly(source).Split('\n');
        var original = source.Split('\n');
        for (int i = 0; i < code.Length; i++)
            foreach (var (what, pattern) in FileSystemAccess)
                if (pattern.IsMatch(code[i]))
                {
                    yield return (i + 1, what, original[i].Trim());
                    break;
                }
    }

    /// <summary>
    /// <paramref name="source"/> with the contents of comments (XML docs included), string and char literals
    /// replaced by spaces; line breaks and the code of interpolation holes are kept, so line numbers and
    /// columns stay as they are.
    /// </summary>
    internal static string CodeOnly(string source)
    {
        var output = new StringBuilder(source);
        var scanner = new Scanner(source, output);
        scanner.Code(closeBraces: 0);
        return output.ToString();
    }

    /// <summary>A small C# lexer that knows just enough to tell code from comments and literals.</summary>
    private sealed class Scanner(string s, StringBuilder output)
    {
        private int _i;

        private char At(int k) => k < s.Length ? s[k] : '\0';

        private void Blank(int from, int to)
        {
            for (int k = from; k < to && k < s.Length; k++)
                if (s[k] != '\n' && s[k] != '\r') output[k] = ' ';
        }

        /// <summary>Scans code; with <paramref name="closeBraces"/> &gt; 0, stops after the '}' run that closes an interpolation hole.</summary>
        public void Code(int closeBraces)
        {
            int depth = 0;
            while (_i < s.Length)
            {
                char c = s[_i];
                if (c == '/' && At(_i + 1) == '/')
                {
                    int end = s.IndexOf('\n', _i);
                    if (end < 0) end = s.Length;
                    Blank(_i, end);
                    _i = end;
                }
                else if (c == '/' && At(_i + 1) == '*')
                {
                    int end = s.IndexOf("*/", _i + 2, StringComparison.Ordinal);
                    end = end < 0 ? s.Length : end + 2;
                    Blank(_i, end);
                    _i = end;
                }
                else if (c == '\'')
                {
                    int k = _i + 1;
                    while (k < s.Length && s[k] != '\'' && s[k] != '\n') k += s[k] == '\\' ? 2 : 1;
                    Blank(_i + 1, k);
                    _i = Math.Min(k + 1, s.Length);
                }
                else if (c is '"' or '@' or '$' && StringStart(out int dollars, out bool verbatim, out int quotes))
                {
                    String(dollars, verbatim, quotes);
                }
                else if (c == '{')
                {
                    depth++;
                    _i++;
                }
                else if (c == '}')
                {
                    if (closeBraces > 0 && depth == 0)
                    {
                        _i++;
                        for (int n = 1; n < closeBraces && At(_i) == '}'; n++) _i++;
                        return;
                    }
                    depth--;
                    _i++;
                }
                else
                {
                    _i++;
                }
            }
        }

        /// <summary>Recognises <c>"</c>, <c>@"</c>, <c>$"</c>, <c>$@"</c>, <c>@$"</c> and raw <c>$$"""</c> openings at the cursor.</summary>
        private bool StringStart(out int dollars, out bool verbatim, out int quotes)
        {
            int k = _i;
            dollars = 0;
            verbatim = false;
            while (At(k) == '$') { dollars++; k++; }
            if (At(k) == '@') { verbatim = true; k++; }
            while (At(k) == '$') { dollars++; k++; }
            quotes = 0;
            while (At(k + quotes) == '"') quotes++;
            if (quotes == 0) return false;
            if (quotes == 2 && !verbatim) quotes = 1; // "" is an empty regular string, not a raw one
            if (verbatim || quotes < 3) quotes = 1;
            _i = k + quotes;
            return true;
        }

        private void String(int dollars, bool verbatim, int quotes)
        {
            int holeOpen = Math.Max(dollars, 1);
            while (_i < s.Length)
            {
                char c = s[_i];
                if (quotes >= 3)
                {
                    int run = 0;
                    while (At(_i + run) == '"') run++;
                    if (run >= quotes)
                    {
                        _i += run;
                        return;
                    }
                }
                else if (c == '"')
                {
                    if (verbatim && At(_i + 1) == '"')
                    {
                        Blank(_i, _i + 2);
                        _i += 2;
                        continue;
                    }
                    _i++;
                    return;
                }
                else if (c == '\\' && !verbatim)
                {
                    Blank(_i, _i + 2);
                    _i += 2;
                    continue;
                }
                if (dollars > 0 && c == '{')
                {
                    int run = 0;
                    while (At(_i + run) == '{') run++;
                    if (quotes < 3 && run >= 2)
                    {
                        Blank(_i, _i + 2); // {{ is a literal brace
                        _i += 2;
                        continue;
                    }
                    if (run >= holeOpen)
                    {
                        Blank(_i, _i + run - holeOpen); // braces beyond the opening run are content
                        _i += run;
                        Code(closeBraces: holeOpen);
                        continue;
                    }
                }
                if (quotes < 3 && dollars > 0 && c == '}' && At(_i + 1) == '}')
                {
                    Blank(_i, _i + 2);
                    _i += 2;
                    continue;
                }
                Blank(_i, _i + 1);
                _i++;
            }
        }
    }
}
