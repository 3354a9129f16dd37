using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Knossos;

/// <summary>Config parsing rules (KNOSSOS spec §4, §5) on synthetic files.</summary>
public sealed class KnossosConfigTests
{
    private const string PykSeg = "[Dataset]\n_BaseName = a\n_Extent = 10,10,10\n_DataScale = 1,1,1\n_BaseExt = .raw\n_CubeSize = 64,64,64\n\n" +
                                  "[Dataset]\n_BaseName = \"segname\"\n_Extent = 256.0,128.0,64.0\n_DataScale = 10,10,25, 20,20,25,\n_BaseExt = .seg.sz.zip\n" +
                                  "_CubeSize = 32,32,32\n    \n\n[Dataset]\n_BaseName = z\n_Extent = 1,1,1\n_DataScale = 1,1,1\n_BaseExt = .jpg\n";

    [Fact]
    public void PykConf_uses_the_segmentation_section_and_strips_quotes()
    {
        var c = KnossosConfig.ParsePykConf(PykSeg, "/data/ds/x.pyk.conf");
        Assert.Equal("segname", c.Name);
        Assert.Equal(new Xyz(256, 128, 64), c.Boundary);
        Assert.Equal(new Xyz(32, 32, 32), c.CubeShape);
        Assert.Equal([(10.0, 10.0, 25.0), (20.0, 20.0, 25.0)], c.Scales);
        Assert.Equal("/data/ds", c.Root);
        Assert.Equal(KnossosConfigKind.PykConf, c.Kind);
        Assert.Equal("/data/ds/mag1/x0003/y0000/z0012/segname_mag1_x0003_y0000_z0012.seg.sz.zip", c.CubePath(3, 0, 12));
        Assert.EndsWith("x12345/y0000/z0000/segname_mag1_x12345_y0000_z0000.seg.sz.zip", c.CubePath(12345, 0, 0));
    }

    [Fact]
    public void PykConf_without_a_seg_section_takes_the_last_value_of_each_key_and_defaults_the_cube_to_128()
    {
        var text = "[Dataset]\n_BaseName = first\n_Extent = 10,20,30\n_DataScale = 1,2,3\n_BaseExt = .raw\n\n[Dataset]\n_BaseName = second\n_BaseExt = .jpg\n" +
                   "garbage line without separator\n_Key=value_without_spaces\n";
        var c = KnossosConfig.ParsePykConf(text, "/d/x.pyk.conf");
        Assert.Equal("second", c.Name);
        Assert.Equal(new Xyz(10, 20, 30), c.Boundary);
        Assert.Equal(new Xyz(128, 128, 128), c.CubeShape);
    }

    [Fact]
    public void PykConf_base_url_local_and_relative_resolve_and_remote_is_refused()
    {
        var abs = KnossosConfig.ParsePykConf(PykSeg + "_BaseURL = file:///elsewhere/cubes\n", "/d/x.pyk.conf");
        Assert.Equal("/d", KnossosConfig.ParsePykConf(PykSeg, "/d/x.pyk.conf").Root);
        // the last section (.jpg) does not own _BaseURL here: put it in the seg section
        var seg = PykSeg.Replace("_BaseExt = .seg.sz.zip\n", "_BaseExt = .seg.sz.zip\n_BaseURL = file:///elsewhere/cubes\n", StringComparison.Ordinal);
        Assert.Equal("/elsewhere/cubes", KnossosConfig.ParsePykConf(seg, "/d/x.pyk.conf").Root);
        Assert.Equal("/d", abs.Root);
        var rel = PykSeg.Replace("_BaseExt = .seg.sz.zip\n", "_BaseExt = .seg.sz.zip\n_BaseURL = rel/cubes\n", StringComparison.Ordinal);
        Assert.Equal(Path.GetFullPath("rel/cubes"), KnossosConfigFiles.ParsePykConf(rel, "/d/x.pyk.conf").Root);
        var http = PykSeg.Replace("_BaseExt = .seg.sz.zip\n", "_BaseExt = .seg.sz.zip\n_BaseURL = https://host/ds/\n", StringComparison.Ordinal);
        var e = Assert.Throws<NotSupportedException>(() => KnossosConfig.ParsePykConf(http, "/d/x.pyk.conf"));
        Assert.Contains("https://host/ds/", e.Message);
    }

    [Fact]
    public void PykConf_missing_keys_are_named()
    {
        var e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParsePykConf("[Dataset]\n_BaseName = a\n_DataScale = 1,1,1\n", "/d/x.pyk.conf"));
        Assert.Contains("_Extent", e.Message);
        Assert.Contains("/d/x.pyk.conf", e.Message);
        e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParsePykConf("[Dataset]\n_BaseName = a\n_Extent = 1,1,1\n", "/d/x.pyk.conf"));
        Assert.Contains("_DataScale", e.Message);
        // _ServerFormat = knossos makes _DataScale optional
        var ok = KnossosConfig.ParsePykConf("[Dataset]\n_BaseName = a\n_Extent = 1,1,1\n_ServerFormat = knossos\n", "/d/x.pyk.conf");
        Assert.Empty(ok.Scales);
        Assert.Throws<InvalidDataException>(() => KnossosConfig.ParsePykConf("[Dataset]\n_BaseName = a\n_Extent = 1.5,1,1\n_DataScale = 1,1,1\n", "/d/x.pyk.conf"));
    }

    private const string Legacy = "experiment name \"ds_mag1\";\nboundary x 100;\nboundary y 200;\nboundary z 300;\nscale x 9.50;\nscale y 9.50;\nscale z 20.00;\nmagnification 1;";

    [Fact]
    public void LegacyConf_keys_keep_trailing_space_name_loses_mag1_suffix_and_root_is_above_the_mag_folder()
    {
        var c = KnossosConfig.ParseLegacyConf(Legacy, "/data/ds/mag1/knossos.conf");
        Assert.Equal("ds", c.Name);
        Assert.Equal(new Xyz(100, 200, 300), c.Boundary);
        Assert.Equal(new Xyz(128, 128, 128), c.CubeShape);
        Assert.Equal([(9.5, 9.5, 20.0)], c.Scales);
        Assert.Equal("/data/ds", c.Root);
        Assert.Equal(KnossosConfigKind.LegacyConf, c.Kind);
        // outside a magN folder the root is the conf's own folder; a name not ending in mag1 is kept
        var c2 = KnossosConfig.ParseLegacyConf(Legacy.Replace("ds_mag1", "plain", StringComparison.Ordinal), "/data/other/knossos.conf");
        Assert.Equal("plain", c2.Name);
        Assert.Equal("/data/other", c2.Root);
    }

    [Fact]
    public void LegacyConf_doubled_space_unquoted_name_and_ftp_mode_fail()
    {
        var e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParseLegacyConf(Legacy.Replace("boundary x 100", "boundary x  100", StringComparison.Ordinal), "/d/mag1/knossos.conf"));
        Assert.Contains("'boundary x '", e.Message);
        e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParseLegacyConf(Legacy.Replace("\"ds_mag1\"", "ds_mag1", StringComparison.Ordinal), "/d/mag1/knossos.conf"));
        Assert.Contains("experiment name", e.Message);
        Assert.Throws<NotSupportedException>(() => KnossosConfig.ParseLegacyConf("ftp_mode host path user pass 30;\n" + Legacy, "/d/mag1/knossos.conf"));
    }

    [Fact]
    public void Toml_takes_the_first_local_segmentation_layer_with_non_cubic_cubes()
    {
        var toml = """
            [[Layer]]
            Name = 'raw'
            FileExtension = ['.raw']
            Extent_px = [1, 1, 1]
            CubeShape_px = [1, 1, 1]

            [[Layer]]
            URL = 'https://example.org/seg/'
            Name = 'remote'
            FileExtension = ['.seg.sz.zip']
            Extent_px = [1, 1, 1]
            CubeShape_px = [1, 1, 1]

            [[Layer]]
            URL = 'file:///mnt/seg'
            Name = "local"
            ServerFormat = 'knossos'
            FileExtension = ['.raw', '.seg.sz.zip']
            Extent_px = [300, 200, 100]
            VoxelSize_nm = [[10.0, 10.0, 25.0], [20.0, 20.0, 25.0]]
            CubeShape_px = [64, 32, 16]
            DataType = 'uint64'
            """;
        var c = KnossosConfig.ParseToml(toml, "/d/x.k.toml");
        Assert.Equal("local", c.Name);
        Assert.Equal(new Xyz(300, 200, 100), c.Boundary);
        Assert.Equal(new Xyz(64, 32, 16), c.CubeShape);
        Assert.Equal(2, c.Scales.Count);
        Assert.Equal("/mnt/seg", c.Root);
        Assert.Equal(KnossosConfigKind.Toml, c.Kind);
    }

    [Fact]
    public void Toml_refuses_remote_precomputed_and_missing_layers_clearly()
    {
        const string tail = "FileExtension = ['.seg.sz.zip']\nExtent_px = [1, 1, 1]\nCubeShape_px = [1, 1, 1]\n";
        Assert.Throws<NotSupportedException>(() => KnossosConfig.ParseToml("[[Layer]]\nName = 'a'\nURL = 'http://h/x'\n" + tail, "/d/x.k.toml"));
        Assert.Throws<NotSupportedException>(() => KnossosConfig.ParseToml("[[Layer]]\nName = 'a'\nServerFormat = 'precomputed'\n" + tail, "/d/x.k.toml"));
        Assert.Throws<NotSupportedException>(() => KnossosConfig.ParseToml("[[Layer]]\nName = 'a'\nURL = '/local/info'\n" + tail, "/d/x.k.toml"));
        var e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParseToml("[[Layer]]\nName = 'a'\nFileExtension = ['.raw']\n", "/d/x.k.toml"));
        Assert.Contains("no segmentation layer", e.Message);
        e = Assert.Throws<InvalidDataException>(() => KnossosConfig.ParseToml("[[Layer]]\nName = 'a'\nFileExtension = ['.seg.sz.zip']\nExtent_px = [1, 1, 1]\n", "/d/x.k.toml"));
        Assert.Contains("CubeShape_px", e.Message);
        Assert.Throws<InvalidDataException>(() => KnossosConfig.ParseToml("[[Layer]\nName = ", "/d/x.k.toml"));
        var rel = KnossosConfigFiles.ParseToml("[[Layer]]\nName = 'a'\nURL = 'some/rel'\n" + tail, "/d/x.k.toml");
        Assert.Equal(Path.GetFullPath("some/rel"), rel.Root);
    }

    [Fact]
    public void Pure_parse_dispatches_on_the_name_and_leaves_relative_paths_relative()
    {
        Assert.Equal(KnossosConfigKind.PykConf, KnossosConfig.Parse(PykSeg, "/d/x.pyk.conf").Kind);
        Assert.Equal(KnossosConfigKind.LegacyConf, KnossosConfig.Parse(Legacy, "/d/mag1/knossos.conf").Kind);
        Assert.Equal(KnossosConfigKind.LegacyConf, KnossosConfig.Parse(Legacy, "/d/other.conf").Kind);
        Assert.Equal(KnossosConfigKind.Toml, KnossosConfig.KindOf("/d/x.k.toml"));
        Assert.Equal(KnossosConfigKind.PykConf, KnossosConfig.KindOf("ds.pyknossos.conf"));
        var rel = PykSeg.Replace("_BaseExt = .seg.sz.zip\n", "_BaseExt = .seg.sz.zip\n_BaseURL = rel/cubes\n", StringComparison.Ordinal);
        Assert.Equal("rel/cubes", KnossosConfig.Parse(rel, "/d/x.pyk.conf").Root);
        Assert.Equal(".", KnossosConfig.Parse(PykSeg, "x.pyk.conf").Root);
        Assert.Equal("ds", KnossosConfig.Parse(Legacy, "ds/mag1/knossos.conf").Root);
        Assert.Equal("x.pyk.conf", KnossosConfig.Parse(PykSeg, "x.pyk.conf").ConfigPath);
        // the file side makes them absolute
        Assert.Equal(Path.GetFullPath("ds"), KnossosConfigFiles.ParseLegacyConf(Legacy, "ds/mag1/knossos.conf").Root);
        Assert.Equal(Path.GetFullPath("x.pyk.conf"), KnossosConfigFiles.ParsePykConf(PykSeg, "x.pyk.conf").ConfigPath);
    }

    [Fact]
    public void Folder_resolution_order_is_pyk_then_toml_then_legacy()
    {
        using var t = new TempDir();
        const string toml = "[[Layer]]\nName = 'fromtoml'\nFileExtension = ['.seg.sz.zip']\nExtent_px = [8, 8, 8]\nCubeShape_px = [4, 4, 4]\n";
        Directory.CreateDirectory(t.File("mag1"));
        Assert.Throws<FileNotFoundException>(() => KnossosConfigFiles.Open(t.Path));
        Assert.Throws<FileNotFoundException>(() => KnossosConfigFiles.Open(t.File("nope")));
        File.WriteAllText(t.File("mag1/knossos.conf"), Legacy);
        Assert.Equal(KnossosConfigKind.LegacyConf, KnossosConfigFiles.Open(t.Path).Kind);
        File.WriteAllText(t.File("a.k.toml"), toml);
        Assert.Equal("fromtoml", KnossosConfigFiles.Open(t.Path).Name);
        File.WriteAllText(t.File("one.pyk.conf"), PykSeg);
        Assert.Equal("segname", KnossosConfigFiles.Open(t.Path).Name);
        // two pyk confs: that step is skipped (as kd_factory does), the single toml wins
        File.WriteAllText(t.File("two.pyk.conf"), PykSeg);
        Assert.Equal("fromtoml", KnossosConfigFiles.Open(t.Path).Name);
        File.WriteAllText(t.File("b.k.toml"), toml);
        Assert.Equal(KnossosConfigKind.LegacyConf, KnossosConfigFiles.Open(t.Path).Kind);
        // a file path is used as given, dispatched on its name
        Assert.Equal(KnossosConfigKind.PykConf, KnossosConfigFiles.Open(t.File("two.pyk.conf")).Kind);
        Assert.Equal(KnossosConfigKind.Toml, KnossosConfigFiles.Open(t.File("b.k.toml")).Kind);
        File.WriteAllText(t.File("other.conf"), Legacy);
        var c = KnossosConfigFiles.Open(t.File("other.conf"));
        Assert.Equal(KnossosConfigKind.LegacyConf, c.Kind);
        Assert.Equal(Path.GetFullPath(t.Path), c.Root);
    }
}
