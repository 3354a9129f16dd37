using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.EntryStores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

public class MustExistTests
{
    [Fact]
    public void The_factories_refuse_a_missing_read_only_store_naming_it()
    {
        using var dir = new TempDir();
        var typo = dir.File("typo/attr_dict.pkl");
        var log = new ListLogger();
        var e = Assert.Throws<FileNotFoundException>(() => AttributeDict.Open(typo, new StoreOptions { Logger = log }));
        Assert.Contains(typo, e.Message);
        Assert.Equal(typo, e.FileName);
        Assert.Contains("MustExist", e.Message);
        Assert.Single(log.Warnings);
        Assert.Throws<FileNotFoundException>(() => AttributeDict.Open(typo));
        Assert.Throws<FileNotFoundException>(() => StoreFactory.Open(StoreClass.MeshStorage, typo));
        Assert.Throws<FileNotFoundException>(() => CompressedStorage.OpenAsync(typo).GetAwaiter().GetResult());
        Assert.Throws<FileNotFoundException>(() => VoxelStorageDyn.Open(dir.File("voxel"), voxelMode: false));
        Assert.False(Directory.Exists(dir.File("typo")));
    }

    [Fact]
    public void The_upstream_shaped_constructors_open_empty_but_warn()
    {
        using var dir = new TempDir();
        var typo = dir.File("typo/attr_dict.pkl");
        var log = new ListLogger();
        using (var ad = new AttributeDict(typo, new StoreOptions { Logger = log }))
            Assert.Equal(0, ad.Count);
        var w = Assert.Single(log.Warnings);
        Assert.Contains(typo, w);
        Assert.Contains("does not exist", w);
        using (var ad = AttributeDict.Open(typo, new StoreOptions { MustExist = false }))
            Assert.Equal(0, ad.Count);
        Assert.Throws<FileNotFoundException>(() => new AttributeDict(typo, new StoreOptions { MustExist = true }));
    }

    [Fact]
    public void Writable_opens_and_existing_stores_are_not_affected()
    {
        using var dir = new TempDir();
        var path = dir.File("new/attr_dict.pkl");
        var log = new ListLogger();
        using (var ad = AttributeDict.Open(path, StoreOptions.Writable with { Logger = log }))
        {
            ad[1] = new SyConn.Backend.Python.PyDict { ["size"] = 1L };
            ad.Push();
        }
        using (var r = AttributeDict.Open(path, new StoreOptions { Logger = log }))
            Assert.Equal(1, r.Get<int>(1, "size"));
        Assert.Empty(log.Warnings);
        // A VoxelStorageDyn without its optional voxel cache opens read-only through the factory.
        var vs = dir.File("vs");
        using (var w = VoxelStorageDyn.Open(vs, StoreOptions.Writable)) w.Push();
        using (var r = VoxelStorageDyn.Open(vs, new StoreOptions { Logger = log })) Assert.Empty(r.Keys);
        Assert.Empty(log.Warnings);
    }
}
