using System.Text.Json.Nodes;
using System.Text.Json;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// The <c>config.json</c> of a Mamba-1 state-space language model: <c>mamba</c> (MambaForCausalLM) or
/// <c>falcon_mamba</c> (FalconMambaForCausalLM, which RMS-normalises B, C and Δ inside the mixer).
/// Names follow Hugging Face transformers.
/// </summary>
public sealed record MambaConfig
{
    /// <summary><c>model_type</c> values this implementation runs.</summary>
    public static readonly IReadOnlyList<string> SupportedModelTypes = new[] { "mamba", "falcon_mamba" };

    /// <summary>Architectures of <see cref="SupportedModelTypes"/>, in the same order.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures = new[] { "MambaForCausalLM", "FalconMambaForCausalLM" };

    /// <summary>The architecture named in the config (MambaForCausalLM or FalconMambaForCausalLM).</summary>
    public required string Architecture { get; init; }
    /// <summary><c>model_type</c>: mamba or falcon_mamba.</summary>
    public required string ModelType { get; init; }
    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }
    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }
    /// <summary><c>state_size</c> N of the selective scan.</summary>
    public required int StateSize { get; init; }
    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }
    /// <summary><c>expand</c>: the mixer's inner width is expand · hidden_size.</summary>
    public required int Expand { get; init; }
    /// <summary><c>conv_kernel</c> of the depthwise causal convolution.</summary>
    public required int ConvKernel { get; init; }
    /// <summary><c>time_step_rank</c>; "auto" means ⌈hidden_size / 16⌉.</summary>
    public required int TimeStepRank { get; init; }
    /// <summary><c>use_bias</c>: in_proj and out_proj carry biases.</summary>
    public required bool UseBias { get; init; }
    /// <summary><c>use_conv_bias</c>: conv1d carries a bias.</summary>
    public required bool UseConvBias { get; init; }
    /// <summary><c>layer_norm_epsilon</c> of the block and final RMS norms.</summary>
    public required double LayerNormEpsilon { get; init; }
    /// <summary><c>mixer_rms_eps</c> of Falcon-Mamba's weightless B/C/Δ norms (default 1e-6; unused for mamba).</summary>
    public required double MixerRmsEps { get; init; }
    /// <summary><c>tie_word_embeddings</c> (default true): the LM head reuses the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary><c>bos_token_id</c>, when given.</summary>
    public int? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c>, when given.</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Inner width of the mixer: expand · hidden_size.</summary>
    public int IntermediateSize => Expand * HiddenSize;

    /// <summary>True for Falcon-Mamba, whose mixer RMS-normalises B, C and Δ after x_proj.</summary>
    public bool NormalizesBcDt => ModelType == "falcon_mamba";

    /// <summary>Reads and validates <c>config.json</c> of a model folder (or the file itself).</summary>
    public static MambaConfig Load(string path)
    {
        var (json, file) = HfConfigFile.Read(path);
        return FromJson(json, file);
    }

    /// <summary>
    /// Builds the config from parsed JSON with the defaults of transformers and checks every value;
    /// <paramref name="file"/> names the source in errors.
    /// </summary>
    public static MambaConfig FromJson(JsonObject json, string file)
    {
        var raw = HfConfigFile.Deserialize<MambaConfigJson>(json, file);
        string? architecture = raw.Architectures is { Length: > 0 } list ? list[0] : null;
        string modelType = raw.ModelType ?? architecture switch
        {
            null => throw new ModelFormatException($"{file}: neither 'architectures' nor 'model_type' is set; {SupportedList}"),
            _ => SupportedArchitectures.ToList().IndexOf(architecture) is int i and >= 0 ? SupportedModelTypes[i]
                : architecture.Replace("ForCausalLM", "", StringComparison.Ordinal).ToLowerInvariant(),
        };
        int index = SupportedModelTypes.ToList().IndexOf(modelType);
        if (index < 0)
            throw new ModelFormatException($"{file}: model_type '{modelType}' is not supported yet; {SupportedList}");
        string expectedArchitecture = SupportedArchitectures[index];
        if (architecture is not null && architecture != expectedArchitecture)
            throw new ModelFormatException($"{file}: architecture '{architecture}' does not match model_type '{modelType}' (expected {expectedArchitecture})");
        var check = new ConfigCheck(file);

        int hidden = check.Positive("hidden_size", raw.HiddenSize);
        int rank = raw.TimeStepRank is { } r
            ? r.ValueKind == JsonValueKind.String && r.GetString() == "auto" ? (hidden + 15) / 16 // HF: math.ceil(hidden_size / 16)
            : r.ValueKind == JsonValueKind.Number && r.TryGetInt32(out int n) ? check.Positive("time_step_rank", n)
            : throw new ModelFormatException($"{file}: time_step_rank is {r.GetRawText()}; it must be a positive integer or \"auto\"")
            : (hidden + 15) / 16;
        double expand = raw.Expand ?? 2;
        if (expand <= 0 || expand != Math.Floor(expand) || expand > int.MaxValue / (double)hidden)
            throw new ModelFormatException($"{file}: expand is {expand}; it must be a positive integer");
        if (raw.IntermediateSize is int inner && inner != (int)expand * hidden)
            throw new ModelFormatException(
                $"{file}: intermediate_size {inner} disagrees with expand {expand} × hidden_size {hidden} = {(int)expand * hidden}; fix one of them");
        string act = raw.HiddenAct ?? "silu";
        if (act != "silu")
            throw new ModelFormatException($"{file}: hidden_act '{act}' is not supported; only silu is");

        return new MambaConfig
        {
            Architecture = expectedArchitecture,
            ModelType = modelType,
            VocabSize = check.Positive("vocab_size", raw.VocabSize),
            HiddenSize = hidden,
            StateSize = check.Positive("state_size", raw.StateSize ?? 16),
            NumHiddenLayers = check.Positive("num_hidden_layers", raw.NumHiddenLayers),
            Expand = (int)expand,
            ConvKernel = check.Positive("conv_kernel", raw.ConvKernel ?? 4),
            TimeStepRank = rank,
            UseBias = raw.UseBias ?? false,
            UseConvBias = raw.UseConvBias ?? true,
            LayerNormEpsilon = check.Positive("layer_norm_epsilon", raw.LayerNormEpsilon ?? 1e-5),
            MixerRmsEps = check.Positive("mixer_rms_eps", raw.MixerRmsEps ?? 1e-6),
            TieWordEmbeddings = raw.TieWordEmbeddings ?? true,
            BosTokenId = raw.BosTokenId,
            EosTokenId = raw.EosTokenId,
        };
    }

    private static string SupportedList => $"supported: {string.Join(", ", SupportedModelTypes)}";

    /// <summary>The config as Hugging Face writes <c>config.json</c>.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(JsonValue.Create(Architecture)),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["state_size"] = StateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["expand"] = Expand,
            ["conv_kernel"] = ConvKernel,
            ["time_step_rank"] = TimeStepRank,
            ["use_bias"] = UseBias,
            ["use_conv_bias"] = UseConvBias,
            ["layer_norm_epsilon"] = LayerNormEpsilon,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = "float32",
        };
        if (ModelType == "falcon_mamba") json["mixer_rms_eps"] = MixerRmsEps;
        if (BosTokenId is int bos) json["bos_token_id"] = bos;
        if (EosTokenId is int eos) json["eos_token_id"] = eos;
        return json;
    }

    /// <summary>Number of parameters of the model this config describes.</summary>
    public long ParameterCount()
    {
        long h = HiddenSize, d = IntermediateSize, n = StateSize, r = TimeStepRank, k = ConvKernel;
        long mixer = h * 2 * d + (UseBias ? 2 * d : 0)   // in_proj
            + d * k + (UseConvBias ? d : 0)              // conv1d
            + d * (r + 2 * n)                            // x_proj
            + r * d + d                                  // dt_proj
            + d * n + d                                  // A_log, D
            + d * h + (UseBias ? h : 0);                 // out_proj
        long layer = mixer + h;                          // + norm
        long embeddings = (long)VocabSize * h * (TieWordEmbeddings ? 1 : 2);
        return NumHiddenLayers * layer + embeddings + h;
    }
}
