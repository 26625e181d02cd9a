using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.Models.Mamba;

namespace LoraMixer.Models;

/// <summary>
/// The <c>config.json</c> of a Mamba-1 state-space language model: <c>mamba</c> (MambaForCausalLM) or
/// <c>falcon_mamba</c> (FalconMambaForCausalLM, which RMS-normalises B, C and Δ inside the mixer).
/// Names follow Hugging Face transformers.
/// </summary>
public sealed record MambaConfig
{
    /// <summary><c>model_type</c> values this implementation runs.</summary>
    public static readonly IReadOnlyList<string> SupportedModelTypes = new[] { "mamba", "falcon_mamba" };

    // model_type / architecture names of other recurrent or state-space families, refused with a clear message.
    private static readonly string[] OtherStateSpaceTypes =
        { "mamba2", "jamba", "bamba", "zamba", "zamba2", "falcon_h1", "nemotron_h", "granitemoehybrid", "rwkv", "recurrent_gemma", "xlstm", "lfm2" };

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

    /// <summary>
    /// Whether the config of <paramref name="modelDir"/> names a state-space or recurrent family (supported
    /// or not), so that loading should go through <see cref="Load"/> rather than the Llama path.
    /// </summary>
    public static bool DescribesStateSpaceModel(string modelDir)
    {
        string file = Path.Combine(modelDir, "config.json");
        if (!File.Exists(file)) return false;
        JsonObject? json;
        try { json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject; }
        catch (System.Text.Json.JsonException) { return false; }
        if (json is null) return false;
        var config = new HfConfigFile(json, file);
        string? modelType = json["model_type"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        string? architecture = config.Architecture();
        return IsStateSpaceName(modelType) || IsStateSpaceName(architecture?.Replace("ForCausalLM", "", StringComparison.Ordinal));
    }

    private static bool IsStateSpaceName(string? name)
    {
        if (name is null) return false;
        string n = name.ToLowerInvariant();
        return n.Contains("mamba", StringComparison.Ordinal) || OtherStateSpaceTypes.Contains(n);
    }

    /// <summary>Reads and validates <c>config.json</c> of a model folder (or the file itself).</summary>
    public static MambaConfig Load(string path)
    {
        var file = HfConfigFile.Read(path);
        return FromJson(file.Json, file.File);
    }

    /// <summary>Builds the config from parsed JSON; <paramref name="file"/> names the source in errors.</summary>
    public static MambaConfig FromJson(JsonObject json, string file)
    {
        var reader = new HfConfigFile(json, file);
        string? architecture = reader.Architecture();
        string modelType = reader.OptionalString("model_type") ?? architecture switch
        {
            "MambaForCausalLM" => "mamba",
            "FalconMambaForCausalLM" => "falcon_mamba",
            null => throw new ModelFormatException($"{file}: neither 'architectures' nor 'model_type' is set; {SupportedList}"),
            var other => other.Replace("ForCausalLM", "", StringComparison.Ordinal).ToLowerInvariant(),
        };
        if (!SupportedModelTypes.Contains(modelType))
            throw new ModelFormatException($"{file}: model_type '{modelType}' is not supported yet; {SupportedList}");
        string expectedArchitecture = modelType == "mamba" ? "MambaForCausalLM" : "FalconMambaForCausalLM";
        if (architecture is not null && architecture != expectedArchitecture)
            throw new ModelFormatException($"{file}: architecture '{architecture}' does not match model_type '{modelType}' (expected {expectedArchitecture})");

        int hidden = reader.RequiredInt("hidden_size");
        if (hidden == 0) throw new ModelFormatException($"{file}: hidden_size must be positive");
        int rank;
        if (json["time_step_rank"] is null || reader.IsString("time_step_rank"))
        {
            string mode = reader.OptionalString("time_step_rank") ?? "auto";
            if (mode != "auto") throw new ModelFormatException($"{file}: time_step_rank must be an integer or \"auto\", got \"{mode}\"");
            rank = (hidden + 15) / 16; // HF: math.ceil(hidden_size / 16)
        }
        else rank = reader.RequiredInt("time_step_rank");

        double expand = reader.OptionalDouble("expand") ?? 2;
        if (expand <= 0 || expand != Math.Floor(expand))
            throw new ModelFormatException($"{file}: expand must be a positive integer, got {expand}");
        string act = reader.OptionalString("hidden_act") ?? "silu";
        if (act != "silu")
            throw new ModelFormatException($"{file}: hidden_act '{act}' is not supported; only silu is");

        var config = new MambaConfig
        {
            Architecture = expectedArchitecture,
            ModelType = modelType,
            VocabSize = reader.RequiredInt("vocab_size"),
            HiddenSize = hidden,
            StateSize = reader.OptionalInt("state_size") ?? 16,
            NumHiddenLayers = reader.RequiredInt("num_hidden_layers"),
            Expand = (int)expand,
            ConvKernel = reader.OptionalInt("conv_kernel") ?? 4,
            TimeStepRank = rank,
            UseBias = reader.OptionalBool("use_bias") ?? false,
            UseConvBias = reader.OptionalBool("use_conv_bias") ?? true,
            LayerNormEpsilon = reader.OptionalDouble("layer_norm_epsilon") ?? 1e-5,
            MixerRmsEps = reader.OptionalDouble("mixer_rms_eps") ?? 1e-6,
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? true,
            BosTokenId = reader.OptionalInt("bos_token_id"),
            EosTokenId = reader.OptionalInt("eos_token_id"),
        };
        if (config.StateSize == 0 || config.ConvKernel == 0 || config.TimeStepRank == 0 || config.NumHiddenLayers == 0)
            throw new ModelFormatException($"{file}: state_size, conv_kernel, time_step_rank and num_hidden_layers must be positive");
        return config;
    }

    private static string SupportedList =>
        $"supported: {string.Join(", ", SupportedModelTypes)} and the Llama family ({string.Join(", ", LlamaConfig.SupportedArchitectures)})";

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
