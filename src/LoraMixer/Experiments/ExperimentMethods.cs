namespace LoraMixer.Experiments;

/// <summary>The methods of the paper's comparison (Table 2) and of the RSL ablation.</summary>
public static class ExperimentMethods
{
    /// <summary>Every method, in table order.</summary>
    public static readonly IReadOnlyList<ExperimentMethod> All = new ExperimentMethod[]
    {
        new("base", "base model", "main", "the frozen base model"),
        new("oracle", "single-task LoRA (oracle)", "main", "each task's own expert, told the task"),
        new("multitask", "multi-task LoRA", "main", "one LoRA of rank r·tasks on the union of the tasks"),
        new("merge", "uniform merge", "main", "the experts averaged with equal weights"),
        new("lorahub", "LoRAHub", "main", "per target task, merge weights searched gradient-free on its 5 examples (loss + 0.05·mean|w|, w from 0 within ±1.5)"),
        new("lorahub-pooled", "LoRAHub (pooled)", "main", "as LoRAHub, one weight vector searched on 5 examples of every task and used for all"),
        new("mole", "MoLE", "main", "frozen experts; per adapted matrix a gate over the experts' normalised outputs (temperature τ), gating-balance loss"),
        new("mixlora", "MixLoRA", "main", "8 LoRA-adapted FFN experts per block, top-2 router, load-balancing loss 0.01, attention LoRA"),
        new("mixer-joint", "LoRA-Mixer (joint)", "main", "stage-1 experts, then routers with RSL and experts under preservation"),
        new("mixer-pnp", "LoRA-Mixer (plug-and-play)", "main", "frozen stage-1 experts, routers with RSL"),
        new("mixer-pnp-paper", "LoRA-Mixer (plug-and-play, paper's router)", "ablation", "as plug-and-play, with --preset paper: token input, no standardisation, no supervision, router lr 1e-3"),
        new("rsl-none", "plug-and-play, no RSL", "ablation", "routers trained on the LM loss alone"),
        new("rsl-balance", "plug-and-play, balance only", "ablation", "RSL without its entropy term (λ = 0)"),
        new("rsl-entropy-neg", "plug-and-play, entropy sign −1", "ablation", "RSL rewarding high routing entropy"),
    };

    /// <summary>The method of <paramref name="id"/>.</summary>
    /// <exception cref="ArgumentException">Unknown id (the message lists the known ones).</exception>
    public static ExperimentMethod Get(string id) =>
        All.FirstOrDefault(m => m.Id == id)
        ?? throw new ArgumentException($"unknown method '{id}'; known: {string.Join(", ", All.Select(m => m.Id))}");
}
