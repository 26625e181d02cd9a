namespace LoraMixer.Serving;

/// <summary>What <see cref="ServingEngine"/> loads and how many requests it runs and holds at once.</summary>
public sealed record ServingOptions
{
    /// <summary>The base model folder (config.json, weights, tokenizer).</summary>
    public required string ModelDir { get; init; }

    /// <summary>The id of the base model in requests; null = the folder's name.</summary>
    public string? ModelName { get; init; }

    /// <summary>PEFT adapter folders by served name; all of them share one batch with the base.</summary>
    public IReadOnlyList<(string Name, string Dir)> Adapters { get; init; } = [];

    /// <summary>LoRA-Mixer folders by served name; each routes per token as it was trained to.</summary>
    public IReadOnlyList<(string Name, string Dir)> Mixers { get; init; } = [];

    /// <summary>Requests decoded together at most (all models together).</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>Requests waiting for a slot at most; more are refused (HTTP 429).</summary>
    public int MaxQueue { get; init; } = 256;

    /// <summary>A built-in chat template to use instead of the model's (see <see cref="ChatTemplate.Names"/>).</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>
    /// A pause after every decode step (default none): paces a demo, and gives tests of cancellation a request that
    /// outlasts the client on a tiny model whose whole generation otherwise takes milliseconds.
    /// </summary>
    public TimeSpan StepInterval { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Whether Llama-family models decode (and prefill short prompts) on the C# decode kernel, the default; false runs
    /// every step through the TorchSharp modules (the reference path, for diagnosis).
    /// </summary>
    public bool UseDecodeKernel { get; init; } = true;

    /// <summary>Device of the weights ("cpu", "cuda", "cuda:N").</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>"int8": every served model's weights quantized for the CPU decode kernels (<see cref="Quantization.Int8Quantizer"/>); null: fp32.</summary>
    public string? Quantize { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelDir)) throw new ArgumentException("--model is required");
        if (MaxBatch < 1) throw new ArgumentException($"--max-batch must be ≥ 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new ArgumentException($"--max-queue must be ≥ 1, got {MaxQueue}");
        Quantization.Int8Quantizer.CheckMode(Quantize);
        if (StepInterval < TimeSpan.Zero || StepInterval > TimeSpan.FromSeconds(10))
            throw new ArgumentException($"--step-interval-ms must be between 0 and 10000, got {StepInterval.TotalMilliseconds}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (ModelName is not null) CheckName(ModelName, "--model-name");
        foreach (var (name, _) in Adapters.Concat(Mixers))
        {
            CheckName(name, "--adapter/--mixer");
            if (!names.Add(name)) throw new ArgumentException($"the name '{name}' is given twice; every adapter and mixer needs its own name");
        }
        if (ModelName is not null && names.Contains(ModelName))
            throw new ArgumentException($"the name '{ModelName}' is both the base model's and an adapter's or mixer's");
    }

    /// <summary>Served names: letters, digits, '.', '_', '-', ':' and '/' (no path is ever read from a request).</summary>
    public static void CheckName(string name, string option)
    {
        if (name.Length == 0 || name.Length > 128 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or ':' or '/')))
            throw new ArgumentException($"{option}: '{name}' is not a usable model name; use letters, digits, '.', '_', '-', ':' or '/' (at most 128)");
    }
}
