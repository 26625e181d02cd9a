using static TorchSharp.torch;

namespace LoraMixer.Demo;

/// <summary>How the default model is pretrained: optimizer steps, corpus size, batch, learning rate, seed, device.</summary>
public sealed record PretrainSettings
{
    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 1500;
    /// <summary>Corpus documents generated.</summary>
    public int Documents { get; init; } = 20000;
    /// <summary>Documents per step.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate (warm-up then cosine).</summary>
    public double LearningRate { get; init; } = 3e-3;
    /// <summary>Seed of the corpus, the initialisation and the data order.</summary>
    public int Seed { get; init; }
    /// <summary>Architecture: "llama" (default) or "mamba".</summary>
    public string Arch { get; init; } = "llama";
    /// <summary>Device to train on (CPU by default).</summary>
    public Device? Device { get; init; }
}
