namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// Finds the shared folder (fixtures, specs) as the contracts note says: <c>SYCONN_SHARED</c> when
/// set, else <c>../shared</c> beside the repository root (the folder that holds <c>.git</c>).
/// </summary>
public static class Shared
{
    private static readonly Lazy<string?> Root = new(Find);

    /// <summary>True when running under CI (<c>CI=true</c>): skips for missing prerequisites are failures there.</summary>
    public static bool IsCI => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The repository root (the folder holding <c>.git</c>), or null.</summary>
    public static string? RepoRoot { get; } = FindRepoRoot();

    private static string? FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            var git = Path.Combine(dir.FullName, ".git");
            if (Directory.Exists(git) || File.Exists(git)) return dir.FullName;
            dir = dir.Parent;
        }
        return null;
    }

    private static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("SYCONN_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        if (RepoRoot is null) return null;
        var candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
        return Directory.Exists(candidate) ? candidate : null;
    }

    /// <summary>The shared folder; skips the test (fails under CI) when it cannot be found.</summary>
    public static string Dir
    {
        get
        {
            Requires.That(Root.Value is not null, "the shared folder (set SYCONN_SHARED or put it at ../shared beside the repository)");
            return Root.Value!;
        }
    }

    /// <summary>A path below <c>shared/fixtures/py</c>.</summary>
    public static string PyFixture(string name) => Path.Combine(Dir, "fixtures", "py", name);

    /// <summary>A path below <c>shared/fixtures/knossos</c>.</summary>
    public static string KnossosFixture(string name) => Path.Combine(Dir, "fixtures", "knossos", name);
}

/// <summary>Prerequisite checks: skip locally with a message naming what is missing; fail under CI.</summary>
public static class Requires
{
    /// <summary>Skips (or, under CI, fails) the running test when <paramref name="condition"/> is false.</summary>
    public static void That(bool condition, string whatIsMissing)
    {
        if (condition) return;
        if (Shared.IsCI)
            Assert.Fail($"prerequisite missing under CI=true: {whatIsMissing}");
        Skip.If(true, $"missing: {whatIsMissing}");
    }
}
