using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;

namespace LoraMixer.Tests.IO;

public sealed class SafeTensorsCheckpointTests
{
    private static string ShardedFolder()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TestPaths.NewTempDir();
        SafeTensorsWriter.Write(Path.Combine(dir, "model-00001-of-00002.safetensors"),
            [new("a", torch.ones(2, 3)), new("b", torch.tensor(new long[] { 7 }))]);
        SafeTensorsWriter.Write(Path.Combine(dir, "model-00002-of-00002.safetensors"),
            [new("c", torch.full(4, 2.5f))]);
        WriteIndex(dir, ("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"), ("c", "model-00002-of-00002.safetensors"));
        return dir;
    }

    private static void WriteIndex(string dir, params (string Tensor, string Shard)[] map) =>
        File.WriteAllText(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName),
            "{\"metadata\": {\"total_size\": 44}, \"weight_map\": {" +
            string.Join(", ", map.Select(m => $"\"{m.Tensor}\": \"{m.Shard}\"")) + "}}");

    [Fact]
    public void Single_file_checkpoint()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TestPaths.NewTempDir();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), [new("w", torch.arange(6, dtype: torch.float32).reshape(3, 2))]);
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(["w"], checkpoint.Names);
        Assert.True(checkpoint.Contains("w"));
        Assert.False(checkpoint.Contains("x"));
        Assert.Equal(new long[] { 3, 2 }, checkpoint.Shape("w"));
        Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5 }, checkpoint.Read("w").data<float>().ToArray());
    }

    [Fact]
    public void Sharded_checkpoint_reads_from_each_shard()
    {
        string dir = ShardedFolder();
        using var scope = torch.NewDisposeScope();
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(new[] { "a", "b", "c" }, checkpoint.Names.Order());
        Assert.Equal(new long[] { 2, 3 }, checkpoint.Shape("a"));
        Assert.Equal(new long[] { 4 }, checkpoint.Shape("c"));
        Assert.Equal(7L, checkpoint.Read("b").item<long>());
        Assert.Equal(new float[] { 2.5f, 2.5f, 2.5f, 2.5f }, checkpoint.Read("c").data<float>().ToArray());
        Assert.Equal(6f, checkpoint.Read("a").sum().item<float>());
        Assert.Equal(SafeTensorsDType.I64, checkpoint.Info("b").DType);
    }

    [Fact]
    public void Missing_folder()
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "absent");
        var error = Assert.Throws<ModelFormatException>(() => SafeTensorsCheckpoint.Open(dir));
        Assert.Contains(dir, error.Message);
        Assert.Contains("does not exist", error.Message);
    }

    [Fact]
    public void Folder_without_weights()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "x");
        var error = Assert.Throws<ModelFormatException>(() => SafeTensorsCheckpoint.Open(dir));
        Assert.Contains($"{dir} has no model.safetensors or model.safetensors.index.json", error.Message);
    }

    [Fact]
    public void Shard_listed_in_the_index_but_missing()
    {
        string dir = ShardedFolder();
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        var error = Assert.Throws<ModelFormatException>(() => SafeTensorsCheckpoint.Open(dir));
        Assert.Contains("model-00002-of-00002.safetensors", error.Message);
        Assert.Contains("missing", error.Message);
    }

    [Fact]
    public void Tensor_not_in_the_shard_the_index_names()
    {
        string dir = ShardedFolder();
        WriteIndex(dir, ("a", "model-00001-of-00002.safetensors"), ("c", "model-00001-of-00002.safetensors"));
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        var error = Assert.Throws<ModelFormatException>(() => checkpoint.Read("c"));
        Assert.Contains("'c'", error.Message);
        Assert.Contains("model-00001-of-00002.safetensors", error.Message);
        Assert.Contains("does not contain it", error.Message);
        Assert.Throws<ModelFormatException>(() => checkpoint.Shape("c"));
    }

    [Fact]
    public void Tensor_not_in_the_checkpoint()
    {
        string dir = ShardedFolder();
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        var error = Assert.Throws<ModelFormatException>(() => checkpoint.Read("lm_head.weight"));
        Assert.Contains("'lm_head.weight'", error.Message);
        Assert.Contains(dir, error.Message);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"metadata\": {}}")]
    [InlineData("{\"weight_map\": []}")]
    [InlineData("{\"weight_map\": {}}")]
    [InlineData("{\"weight_map\": {\"a\": 3}}")]
    [InlineData("{\"weight_map\": {\"a\": \"../model.safetensors\"}}")]
    [InlineData("{\"weight_map\": {\"a\": \"/etc/passwd\"}}")]
    public void Malformed_index(string index)
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName), index);
        var error = Assert.Throws<ModelFormatException>(() => SafeTensorsCheckpoint.Open(dir));
        Assert.Contains(SafeTensorsCheckpoint.IndexFileName, error.Message);
    }

    [Fact]
    public void A_corrupt_shard_surfaces_as_a_format_error_on_first_use()
    {
        string dir = ShardedFolder();
        File.WriteAllBytes(Path.Combine(dir, "model-00002-of-00002.safetensors"), [1, 2, 3]);
        using var checkpoint = SafeTensorsCheckpoint.Open(dir);
        Assert.Equal(new long[] { 2, 3 }, checkpoint.Shape("a"));
        Assert.Throws<ModelFormatException>(() => checkpoint.Read("c"));
    }
}
