using System.Buffers.Binary;
using System.Text.Json;
using LoraMixer.Conversion;
using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;

namespace LoraMixer.Tests.Conversion;

public sealed class Llama2cConverterTests
{
    private sealed record TinyModel(int Dim, int Hidden, int Layers, int Heads, int KvHeads, int Vocab, int SeqLen, bool Shared)
    {
        public int HeadSize => Dim / Heads;
        public int KvDim => HeadSize * KvHeads;
    }

    /// <summary>
    /// Writes a llama2.c legacy checkpoint whose weights are random but reproducible, and returns the
    /// float blocks in file order so tests can check where each one ends up.
    /// </summary>
    private static Dictionary<string, float[]> WriteCheckpoint(string path, TinyModel m, int seed = 1)
    {
        var rng = new Random(seed);
        float[] Block(long count) => Enumerable.Range(0, (int)count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int d = m.Dim, l = m.Layers, h = m.Hidden, kv = m.KvDim;
        var blocks = new Dictionary<string, float[]>
        {
            ["token_embedding"] = Block((long)m.Vocab * d),
            ["rms_att"] = Block(l * d),
            ["wq"] = Block(l * d * d),
            ["wk"] = Block(l * kv * d),
            ["wv"] = Block(l * kv * d),
            ["wo"] = Block(l * d * d),
            ["rms_ffn"] = Block(l * d),
            ["w1"] = Block(l * h * d),
            ["w2"] = Block(l * d * h),
            ["w3"] = Block(l * h * d),
            ["rms_final"] = Block(d),
            ["freq_cis"] = Block(m.SeqLen * m.HeadSize),
        };
        if (!m.Shared) blocks["wcls"] = Block((long)m.Vocab * d);

        using var stream = File.Create(path);
        Span<byte> field = stackalloc byte[4];
        foreach (int value in new[] { d, h, l, m.Heads, m.KvHeads, m.Shared ? m.Vocab : -m.Vocab, m.SeqLen })
        {
            BinaryPrimitives.WriteInt32LittleEndian(field, value);
            stream.Write(field);
        }
        foreach (float[] block in blocks.Values)
            foreach (float value in block)
            {
                BinaryPrimitives.WriteSingleLittleEndian(field, value);
                stream.Write(field);
            }
        return blocks;
    }

    private static string WriteTokenizer(string dir)
    {
        string path = Path.Combine(dir, "tok.bin");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        return path;
    }

    private static readonly TinyModel Tied = new(Dim: 16, Hidden: 24, Layers: 2, Heads: 4, KvHeads: 2, Vocab: 10, SeqLen: 8, Shared: true);

    [Fact]
    public void Converts_a_tiny_tied_model_into_a_hugging_face_folder()
    {
        string dir = TestPaths.NewTempDir();
        string bin = Path.Combine(dir, "model.bin");
        var blocks = WriteCheckpoint(bin, Tied);
        string outDir = Path.Combine(dir, "out", "hf");

        Llama2cConverter.Convert(bin, WriteTokenizer(dir), outDir);

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json"))))
        {
            JsonElement c = config.RootElement;
            Assert.Equal("LlamaForCausalLM", c.GetProperty("architectures")[0].GetString());
            Assert.Equal("llama", c.GetProperty("model_type").GetString());
            Assert.Equal(16, c.GetProperty("hidden_size").GetInt32());
            Assert.Equal(24, c.GetProperty("intermediate_size").GetInt32());
            Assert.Equal(2, c.GetProperty("num_hidden_layers").GetInt32());
            Assert.Equal(4, c.GetProperty("num_attention_heads").GetInt32());
            Assert.Equal(2, c.GetProperty("num_key_value_heads").GetInt32());
            Assert.Equal(10, c.GetProperty("vocab_size").GetInt32());
            Assert.Equal(8, c.GetProperty("max_position_embeddings").GetInt32());
            Assert.Equal(1e-5, c.GetProperty("rms_norm_eps").GetDouble());
            Assert.Equal(10000.0, c.GetProperty("rope_theta").GetDouble());
            Assert.True(c.GetProperty("tie_word_embeddings").GetBoolean());
            Assert.Equal("silu", c.GetProperty("hidden_act").GetString());
            Assert.Equal(1, c.GetProperty("bos_token_id").GetInt32());
            Assert.Equal(2, c.GetProperty("eos_token_id").GetInt32());
            Assert.Equal("float32", c.GetProperty("torch_dtype").GetString());
        }
        using (var tokenizerConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "tokenizer_config.json"))))
        {
            JsonElement t = tokenizerConfig.RootElement;
            Assert.Equal("<s>", t.GetProperty("bos_token").GetString());
            Assert.Equal("</s>", t.GetProperty("eos_token").GetString());
            Assert.True(t.GetProperty("add_bos_token").GetBoolean());
            Assert.Equal(8, t.GetProperty("model_max_length").GetInt32());
            Assert.Equal("Llama2cTokenizer", t.GetProperty("tokenizer_class").GetString());
        }
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, File.ReadAllBytes(Path.Combine(outDir, "tokenizer.bin")));
        Assert.Equal(
            new[] { "config.json", "model.safetensors", "tokenizer.bin", "tokenizer_config.json" },
            Directory.GetFiles(outDir).Select(Path.GetFileName).Order());

        using var scope = torch.NewDisposeScope();
        using var weights = SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        var expectedKeys = new List<string> { "model.embed_tokens.weight" };
        for (int i = 0; i < 2; i++)
            expectedKeys.AddRange(new[]
            {
                "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                "mlp.down_proj.weight",
            }.Select(k => $"model.layers.{i}.{k}"));
        expectedKeys.Add("model.norm.weight");
        Assert.Equal(expectedKeys, weights.Tensors.Keys);
        Assert.Equal("pt", weights.Metadata["format"]);

        Assert.Equal(new long[] { 10, 16 }, weights.Tensors["model.embed_tokens.weight"].Shape);
        Assert.Equal(new long[] { 8, 16 }, weights.Tensors["model.layers.1.self_attn.k_proj.weight"].Shape);
        Assert.Equal(new long[] { 8, 16 }, weights.Tensors["model.layers.1.self_attn.v_proj.weight"].Shape);
        Assert.Equal(new long[] { 24, 16 }, weights.Tensors["model.layers.1.mlp.up_proj.weight"].Shape);
        Assert.Equal(new long[] { 16, 24 }, weights.Tensors["model.layers.1.mlp.down_proj.weight"].Shape);

        float[] Read(string name) => weights.Read(name).data<float>().ToArray();
        float[] Slice(string block, int layer, int size) => blocks[block][(layer * size)..((layer + 1) * size)];
        Assert.Equal(blocks["token_embedding"], Read("model.embed_tokens.weight"));
        Assert.Equal(Slice("rms_att", 1, 16), Read("model.layers.1.input_layernorm.weight"));
        Assert.Equal(Slice("wv", 1, 8 * 16), Read("model.layers.1.self_attn.v_proj.weight"));
        Assert.Equal(Slice("wo", 1, 16 * 16), Read("model.layers.1.self_attn.o_proj.weight"));
        Assert.Equal(Slice("rms_ffn", 0, 16), Read("model.layers.0.post_attention_layernorm.weight"));
        Assert.Equal(Slice("w1", 1, 24 * 16), Read("model.layers.1.mlp.gate_proj.weight"));
        Assert.Equal(Slice("w3", 1, 24 * 16), Read("model.layers.1.mlp.up_proj.weight"));
        Assert.Equal(Slice("w2", 1, 16 * 24), Read("model.layers.1.mlp.down_proj.weight"));
        Assert.Equal(blocks["rms_final"], Read("model.norm.weight"));

        // HF row h*hd + a*hd/2 + i holds llama2.c row h*hd + 2i + a: pair (2i, 2i+1) becomes (i, i + hd/2).
        AssertPermuted(Slice("wq", 1, 16 * 16), Read("model.layers.1.self_attn.q_proj.weight"), heads: 4, headSize: 4, columns: 16);
        AssertPermuted(Slice("wk", 0, 8 * 16), Read("model.layers.0.self_attn.k_proj.weight"), heads: 2, headSize: 4, columns: 16);
    }

    private static void AssertPermuted(float[] original, float[] converted, int heads, int headSize, int columns)
    {
        Assert.Equal(original.Length, converted.Length);
        for (int h = 0; h < heads; h++)
            for (int a = 0; a < 2; a++)
                for (int i = 0; i < headSize / 2; i++)
                {
                    int hfRow = h * headSize + a * (headSize / 2) + i;
                    int llamaRow = h * headSize + 2 * i + a;
                    for (int c = 0; c < columns; c++)
                        Assert.Equal(original[llamaRow * columns + c], converted[hfRow * columns + c]);
                }
    }

    [Fact]
    public void Untied_models_get_lm_head_from_wcls()
    {
        string dir = TestPaths.NewTempDir();
        string bin = Path.Combine(dir, "model.bin");
        var model = Tied with { Shared = false, KvHeads = 4, Layers = 1 };
        var blocks = WriteCheckpoint(bin, model, seed: 5);
        string outDir = Path.Combine(dir, "out");

        Llama2cConverter.Convert(bin, WriteTokenizer(dir), outDir);

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json"))))
        {
            Assert.False(config.RootElement.GetProperty("tie_word_embeddings").GetBoolean());
            Assert.Equal(10, config.RootElement.GetProperty("vocab_size").GetInt32());
            Assert.Equal(4, config.RootElement.GetProperty("num_key_value_heads").GetInt32());
        }
        using var scope = torch.NewDisposeScope();
        using var weights = SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        Assert.Equal("lm_head.weight", weights.Tensors.Keys.Last());
        Assert.Equal(blocks["wcls"], weights.Read("lm_head.weight").data<float>().ToArray());
        Assert.Equal(blocks["token_embedding"], weights.Read("model.embed_tokens.weight").data<float>().ToArray());
    }

    [Fact]
    public void Permutation_matches_the_hugging_face_formula_on_a_labelled_matrix()
    {
        using var scope = torch.NewDisposeScope();
        // Rows labelled by index: 2 heads of size 4, so rows (0,1,2,3 | 4,5,6,7) become (0,2,1,3 | 4,6,5,7).
        var w = torch.arange(8, dtype: torch.float32).unsqueeze(1).expand(8, 3).contiguous();
        var permuted = Llama2cConverter.PermuteForRotateHalf(w, heads: 2);
        Assert.Equal(new float[] { 0, 2, 1, 3, 4, 6, 5, 7 }, permuted[.., 0].contiguous().data<float>().ToArray());
    }

    [Fact]
    public void Truncated_or_extended_files_name_expected_and_actual_size()
    {
        string dir = TestPaths.NewTempDir();
        string bin = Path.Combine(dir, "model.bin");
        WriteCheckpoint(bin, Tied);
        byte[] bytes = File.ReadAllBytes(bin);
        string tokenizer = WriteTokenizer(dir);

        File.WriteAllBytes(bin, bytes[..^4]);
        var error = Assert.Throws<ModelFormatException>(() => Llama2cConverter.Convert(bin, tokenizer, Path.Combine(dir, "out")));
        Assert.Contains(bin, error.Message);
        Assert.Contains($"implies {bytes.Length} bytes", error.Message);
        Assert.Contains($"the file has {bytes.Length - 4}", error.Message);

        File.WriteAllBytes(bin, [.. bytes, 0, 0, 0, 0]);
        error = Assert.Throws<ModelFormatException>(() => Llama2cConverter.Convert(bin, tokenizer, Path.Combine(dir, "out")));
        Assert.Contains($"the file has {bytes.Length + 4}", error.Message);

        File.WriteAllBytes(bin, bytes[..10]);
        Assert.Contains("shorter than the 28-byte header",
            Assert.Throws<ModelFormatException>(() => Llama2cConverter.Convert(bin, tokenizer, Path.Combine(dir, "out"))).Message);
        Assert.False(Directory.Exists(Path.Combine(dir, "out")));
    }

    [Theory]
    [InlineData(new[] { 0, 24, 2, 4, 2, 10, 8 }, "not positive")]
    [InlineData(new[] { 16, -24, 2, 4, 2, 10, 8 }, "not positive")]
    [InlineData(new[] { 16, 24, 0, 4, 2, 10, 8 }, "not positive")]
    [InlineData(new[] { 16, 24, 2, 4, 2, 0, 8 }, "not positive")]
    [InlineData(new[] { 16, 24, 2, 4, 2, int.MinValue, 8 }, "not positive")]
    [InlineData(new[] { 16, 24, 2, 4, 2, 10, -8 }, "not positive")]
    [InlineData(new[] { 16, 24, 2, 3, 3, 10, 8 }, "n_heads not dividing dim")]
    [InlineData(new[] { 16, 24, 2, 4, 3, 10, 8 }, "n_kv_heads not dividing n_heads")]
    [InlineData(new[] { 16, 24, 2, 4, 8, 10, 8 }, "n_kv_heads not dividing n_heads")]
    [InlineData(new[] { 12, 24, 2, 4, 2, 10, 8 }, "odd head size")]
    [InlineData(new[] { 0x616b3432, 1, 1, 1, 1, 1, 1 }, "version 1 or 2")]
    [InlineData(new[] { 1 << 30, int.MaxValue, int.MaxValue, 1, 1, int.MaxValue, int.MaxValue }, "impossibly large")]
    [InlineData(new[] { 64, 172, 5, 8, 4, 512, 512 }, "implies")]
    public void Bad_headers(int[] fields, string fragment)
    {
        string dir = TestPaths.NewTempDir();
        string bin = Path.Combine(dir, "model.bin");
        byte[] bytes = new byte[28 + 64];
        for (int i = 0; i < 7; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), fields[i]);
        File.WriteAllBytes(bin, bytes);
        var error = Assert.Throws<ModelFormatException>(() => Llama2cConverter.Convert(bin, WriteTokenizer(dir), Path.Combine(dir, "out")));
        Assert.Contains(bin, error.Message);
        Assert.Contains(fragment, error.Message);
    }

    [Fact]
    public void Missing_inputs()
    {
        string dir = TestPaths.NewTempDir();
        string bin = Path.Combine(dir, "model.bin");
        WriteCheckpoint(bin, Tied);
        Assert.Contains("nope.bin", Assert.Throws<ModelFormatException>(() =>
            Llama2cConverter.Convert(Path.Combine(dir, "nope.bin"), WriteTokenizer(dir), Path.Combine(dir, "out"))).Message);
        Assert.Contains("tok-missing.bin", Assert.Throws<ModelFormatException>(() =>
            Llama2cConverter.Convert(bin, Path.Combine(dir, "tok-missing.bin"), Path.Combine(dir, "out"))).Message);
    }

    [SkippableFact]
    public void Converts_stories260K_from_the_shared_folder()
    {
        string bin = TestPaths.RequireShared("models", "stories260K", "stories260K.bin");
        string tokenizer = TestPaths.RequireShared("models", "stories260K", "tok512.bin");
        string outDir = Path.Combine(TestPaths.NewTempDir(), "stories260K");

        Llama2cConverter.Convert(bin, tokenizer, outDir);

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json"))))
        {
            JsonElement c = config.RootElement;
            Assert.Equal(64, c.GetProperty("hidden_size").GetInt32());
            Assert.Equal(172, c.GetProperty("intermediate_size").GetInt32());
            Assert.Equal(5, c.GetProperty("num_hidden_layers").GetInt32());
            Assert.Equal(8, c.GetProperty("num_attention_heads").GetInt32());
            Assert.Equal(4, c.GetProperty("num_key_value_heads").GetInt32());
            Assert.Equal(512, c.GetProperty("vocab_size").GetInt32());
            Assert.Equal(512, c.GetProperty("max_position_embeddings").GetInt32());
            Assert.True(c.GetProperty("tie_word_embeddings").GetBoolean());
        }
        Assert.Equal(File.ReadAllBytes(tokenizer), File.ReadAllBytes(Path.Combine(outDir, "tokenizer.bin")));

        using var scope = torch.NewDisposeScope();
        using var checkpoint = SafeTensorsCheckpoint.Open(outDir);
        Assert.Equal(2 + 5 * 9, checkpoint.Names.Count);
        Assert.False(checkpoint.Contains("lm_head.weight"));
        Assert.Equal(new long[] { 512, 64 }, checkpoint.Shape("model.embed_tokens.weight"));
        Assert.Equal(new long[] { 32, 64 }, checkpoint.Shape("model.layers.4.self_attn.k_proj.weight"));
        Assert.Equal(new long[] { 172, 64 }, checkpoint.Shape("model.layers.4.mlp.gate_proj.weight"));
        var norm = checkpoint.Read("model.norm.weight");
        Assert.True(norm.isfinite().all().item<bool>());
    }
}
