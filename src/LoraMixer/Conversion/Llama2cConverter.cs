using System.Text.Encodings.Web;
using System.Text.Json;
using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;

namespace LoraMixer.Conversion;

/// <summary>
/// Converts a checkpoint of Karpathy's llama2.c (legacy version 0 format) into a Hugging Face Llama
/// model folder that the rest of LoraMixer loads like any downloaded model.
/// </summary>
public static class Llama2cConverter
{
    /// <summary>
    /// Reads <paramref name="modelBin"/> (llama2.c weights) and writes <c>config.json</c>,
    /// <c>model.safetensors</c>, <c>tokenizer_config.json</c> and a copy of <paramref name="tokenizerBin"/>
    /// named <c>tokenizer.bin</c> into <paramref name="outDir"/>, creating it; each file is written
    /// atomically. Throws <see cref="ModelFormatException"/> when an input is missing or malformed.
    /// </summary>
    public static void Convert(string modelBin, string tokenizerBin, string outDir)
    {
        ArgumentNullException.ThrowIfNull(modelBin);
        ArgumentNullException.ThrowIfNull(tokenizerBin);
        ArgumentNullException.ThrowIfNull(outDir);
        if (!File.Exists(modelBin))
            throw new ModelFormatException($"llama2.c checkpoint {modelBin} does not exist; check the path.");
        if (!File.Exists(tokenizerBin))
            throw new ModelFormatException($"llama2.c tokenizer {tokenizerBin} does not exist; check the path (llama2.c ships tokenizer.bin; custom vocabularies come as tokNNN.bin).");

        using MappedFile weights = MappedFile.Open(modelBin, "llama2.c checkpoint", Llama2cHeader.Bytes, length => new ModelFormatException(
            $"Invalid llama2.c checkpoint {modelBin}: it is {length} bytes long, shorter than the {Llama2cHeader.Bytes}-byte header; the file is truncated or not a llama2.c checkpoint."));
        Llama2cHeader header = Llama2cHeader.Parse(modelBin, weights.Span(0, Llama2cHeader.Bytes));
        Llama2cLayout layout = header.Layout()
            ?? throw new ModelFormatException(
                $"Invalid llama2.c checkpoint {modelBin}: its header ({Describe(header)}) implies an impossibly large file; the file is corrupt or not a llama2.c checkpoint.");
        if (layout.TotalBytes != weights.Length)
            throw new ModelFormatException(
                $"Invalid llama2.c checkpoint {modelBin}: its header ({Describe(header)}) implies {layout.TotalBytes} bytes, but the file has {weights.Length}. The file is truncated, has extra data, or is not a legacy (version 0) llama2.c export; download or export it again.");

        Directory.CreateDirectory(outDir);
        SafeTensorsWriter.WriteStreaming(Path.Combine(outDir, SafeTensorsCheckpoint.SingleFileName),
            Entries(header, layout, weights), new Dictionary<string, string> { ["format"] = "pt" });
        WriteJson(Path.Combine(outDir, "config.json"), json => WriteConfig(json, header));
        WriteJson(Path.Combine(outDir, "tokenizer_config.json"), json => WriteTokenizerConfig(json, header));
        try
        {
            AtomicFile.Copy(tokenizerBin, Path.Combine(outDir, "tokenizer.bin"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"Cannot copy llama2.c tokenizer {tokenizerBin}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The Hugging Face tensors in the order of the llama2.c file, each read lazily from the mapping.
    /// </summary>
    private static List<PendingTensor> Entries(Llama2cHeader h, Llama2cLayout l, MappedFile weights)
    {
        long dim = h.Dim, hidden = h.HiddenDim, kv = h.KvDim;
        var entries = new List<PendingTensor>();

        void Add(string name, long floatOffset, long[] shape, Func<torch.Tensor, torch.Tensor>? transform = null) =>
            entries.Add(new PendingTensor(name, SafeTensorsDType.F32, shape, () =>
            {
                torch.Tensor tensor = weights.ReadTensor(Llama2cHeader.Bytes + floatOffset * sizeof(float), shape, SafeTensorsDType.F32);
                return transform is null ? tensor : transform(tensor);
            }));

        Add("model.embed_tokens.weight", l.TokenEmbedding, [h.VocabSize, dim]);
        for (int i = 0; i < h.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            Add(p + "input_layernorm.weight", l.RmsAttention + i * dim, [dim]);
            Add(p + "self_attn.q_proj.weight", l.Wq + i * dim * dim, [dim, dim], w => PermuteForRotateHalf(w, h.Heads));
            Add(p + "self_attn.k_proj.weight", l.Wk + i * kv * dim, [kv, dim], w => PermuteForRotateHalf(w, h.KvHeads));
            Add(p + "self_attn.v_proj.weight", l.Wv + i * kv * dim, [kv, dim]);
            Add(p + "self_attn.o_proj.weight", l.Wo + i * dim * dim, [dim, dim]);
            Add(p + "post_attention_layernorm.weight", l.RmsFfn + i * dim, [dim]);
            Add(p + "mlp.gate_proj.weight", l.W1 + i * hidden * dim, [hidden, dim]);
            Add(p + "mlp.up_proj.weight", l.W3 + i * hidden * dim, [hidden, dim]);
            Add(p + "mlp.down_proj.weight", l.W2 + i * dim * hidden, [dim, hidden]);
        }
        Add("model.norm.weight", l.RmsFinal, [dim]);
        if (!h.SharedClassifier) Add("lm_head.weight", l.Classifier, [h.VocabSize, dim]);
        return entries;
    }

    /// <summary>
    /// llama2.c rotates interleaved pairs (0,1), (2,3), ... of each head, Hugging Face Llama rotates
    /// (i, i + head_dim/2); reordering the rows of the query and key projections per head makes the two
    /// agree, exactly as convert_llama_weights_to_hf.py does. <paramref name="weight"/> is [heads × head_dim, in];
    /// the result is a new [heads × head_dim, in] tensor.
    /// </summary>
    public static torch.Tensor PermuteForRotateHalf(torch.Tensor weight, int heads)
    {
        ArgumentNullException.ThrowIfNull(weight);
        long rows = weight.shape[0], columns = weight.shape[1];
        if (heads <= 0 || rows % heads != 0 || rows / heads % 2 != 0)
            throw new ArgumentException($"{rows} rows do not split into {heads} heads of even size.", nameof(heads));
        long headSize = rows / heads;
        using var scope = torch.NewDisposeScope();
        return weight.reshape(heads, headSize / 2, 2, columns).transpose(1, 2).reshape(rows, columns).MoveToOuterDisposeScope();
    }

    private static void WriteConfig(Utf8JsonWriter json, Llama2cHeader h)
    {
        json.WriteStartArray("architectures");
        json.WriteStringValue("LlamaForCausalLM");
        json.WriteEndArray();
        json.WriteString("model_type", "llama");
        json.WriteNumber("hidden_size", h.Dim);
        json.WriteNumber("intermediate_size", h.HiddenDim);
        json.WriteNumber("num_hidden_layers", h.Layers);
        json.WriteNumber("num_attention_heads", h.Heads);
        json.WriteNumber("num_key_value_heads", h.KvHeads);
        json.WriteNumber("vocab_size", h.VocabSize);
        json.WriteNumber("max_position_embeddings", h.SeqLen);
        // Raw values so the file reads like the Python-written configs (1e-05, 10000.0), not 1E-05 and 10000.
        json.WritePropertyName("rms_norm_eps");
        json.WriteRawValue("1e-05");
        json.WritePropertyName("rope_theta");
        json.WriteRawValue("10000.0");
        json.WriteBoolean("tie_word_embeddings", h.SharedClassifier);
        json.WriteString("hidden_act", "silu");
        json.WriteNumber("bos_token_id", 1);
        json.WriteNumber("eos_token_id", 2);
        json.WriteString("torch_dtype", "float32");
    }

    private static void WriteTokenizerConfig(Utf8JsonWriter json, Llama2cHeader h)
    {
        json.WriteString("bos_token", "<s>");
        json.WriteString("eos_token", "</s>");
        json.WriteBoolean("add_bos_token", true);
        json.WriteNumber("model_max_length", h.SeqLen);
        json.WriteString("tokenizer_class", "Llama2cTokenizer");
    }

    private static void WriteJson(string path, Action<Utf8JsonWriter> body) => AtomicFile.Write(path, stream =>
    {
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
    });

    private static string Describe(Llama2cHeader h) =>
        $"dim={h.Dim}, hidden_dim={h.HiddenDim}, n_layers={h.Layers}, n_heads={h.Heads}, n_kv_heads={h.KvHeads}, vocab_size={(h.SharedClassifier ? h.VocabSize : -h.VocabSize)}, seq_len={h.SeqLen}";
}
