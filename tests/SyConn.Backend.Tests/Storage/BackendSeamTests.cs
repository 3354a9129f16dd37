using System.Reflection;
using System.Text.RegularExpressions;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>The typed stores see their backend only through <see cref="IEntryStore"/>.</summary>
public partial class BackendSeamTests
{
    private static readonly Type[] ConcreteEntryStores = [typeof(PickleFileEntryStore), typeof(NpzEntryStore)];

    [GeneratedRegex(@"\b(is|as)\s+(PickleFileEntryStore|NpzEntryStore)\b|case\s+(PickleFileEntryStore|NpzEntryStore)\b|typeof\((PickleFileEntryStore|NpzEntryStore)\)|\((PickleFileEntryStore|NpzEntryStore)\)\s*\w")]
    private static partial Regex BackendTest();

    [Fact]
    public void No_store_tests_for_or_casts_to_a_concrete_entry_store()
    {
        var root = Shared.RepoRoot ?? throw new InvalidOperationException("repository root not found");
        var files = Directory.GetFiles(Path.Combine(root, "src", "SyConn.Backend", "Stores"), "*.cs")
            .Concat(new[] { "StorageBase.cs", "Storage.cs", "EntryTable.cs" }.Select(f => Path.Combine(root, "src", "SyConn.Backend", "Storage", f)))
            .Concat(Directory.GetFiles(Path.Combine(root, "src", "SyConn.Backend.Cli"), "*.cs", SearchOption.AllDirectories))
            .ToList();
        Assert.True(files.Count > 10, "source files not found");
        var hits = new List<string>();
        foreach (var file in files)
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                var code = lines[i].TrimStart();
                if (code.StartsWith("//", StringComparison.Ordinal)) continue;
                if (BackendTest().IsMatch(code)) hits.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {code}");
            }
        }
        Assert.True(hits.Count == 0, "stores test for a concrete backend:\n" + string.Join("\n", hits));
    }

    [Fact]
    public void No_store_member_takes_or_holds_a_concrete_entry_store()
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var storeTypes = typeof(StorageBase).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(AttributeDict).Namespace || t == typeof(StorageBase) || (t.IsGenericTypeDefinition && t.Name.StartsWith("Storage`", StringComparison.Ordinal)))
            .ToList();
        Assert.Contains(typeof(VoxelStorageDyn), storeTypes);
        var hits = new List<string>();
        foreach (var t in storeTypes)
        {
            foreach (var f in t.GetFields(all)) if (IsConcrete(f.FieldType)) hits.Add($"{t.Name}.{f.Name}");
            foreach (var p in t.GetProperties(all)) if (IsConcrete(p.PropertyType)) hits.Add($"{t.Name}.{p.Name}");
            foreach (var m in t.GetMethods(all).Cast<MethodBase>().Concat(t.GetConstructors(all)))
            {
                if (m is MethodInfo mi && IsConcrete(mi.ReturnType)) hits.Add($"{t.Name}.{m.Name} returns {mi.ReturnType.Name}");
                foreach (var prm in m.GetParameters()) if (IsConcrete(prm.ParameterType)) hits.Add($"{t.Name}.{m.Name}({prm.Name})");
            }
        }
        Assert.True(hits.Count == 0, "store members typed as a concrete entry store:\n" + string.Join("\n", hits));
    }

    private static bool IsConcrete(Type t) => ConcreteEntryStores.Contains(t) || (t.IsGenericType && t.GetGenericArguments().Any(IsConcrete));
}
