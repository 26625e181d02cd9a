using LoraMixer.Errors;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Lora;

/// <summary>
/// Walks a model's linears, matches a <see cref="LoraConfig"/>'s <c>target_modules</c> and swaps the
/// matches for <see cref="LoraLinear"/>s (PEFT's <c>inject_adapter</c>).
/// </summary>
public static class AdapterInjector
{
    /// <summary>Wraps every targeted linear with a fresh adapter (A random, B zero); returns them by module name.</summary>
    public static IReadOnlyDictionary<string, LoraLinear> Inject(ICausalLM model, LoraConfig config)
    {
        var targets = TargetLinears.Find(model, config.IsTarget);
        if (targets.Count == 0)
            throw new AdapterMismatchException(
                $"no module of the base model matches target_modules {Describe(config)}; targetable: {string.Join(", ", TargetLinears.Targetable(model))}");
        var injected = new SortedDictionary<string, LoraLinear>(StringComparer.Ordinal);
        foreach (var target in targets)
        {
            var lora = new LoraLinear(target.Linear, config.RankFor(target.ModuleName), config.ScalingFor(target.ModuleName), config.LoraDropout);
            target.Replace(lora);
            injected[target.ModuleName] = lora;
        }
        return injected;
    }

    /// <summary>
    /// Applies a saved adapter to <paramref name="model"/>: checks every module and shape against the base,
    /// injects, loads the weights, and (when <paramref name="merge"/>) folds them into the base weights.
    /// </summary>
    public static IReadOnlyDictionary<string, LoraLinear> Apply(ICausalLM model, PeftAdapter adapter, bool merge = false)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        adapter.CheckAgainst(TargetLinears.WeightShapes(model), $"the base model ({architecture}, hidden {hidden}, {layers} layers)");
        var names = adapter.Modules.Keys.ToHashSet(StringComparer.Ordinal);
        var targets = TargetLinears.Find(model, names.Contains);
        var applied = new SortedDictionary<string, LoraLinear>(StringComparer.Ordinal);
        foreach (var target in targets)
        {
            var w = adapter.Modules[target.ModuleName];
            if (w.Bias is not null && target.Linear.bias is null)
                throw new AdapterMismatchException(
                    $"adapter '{adapter.Name}' saves a bias for '{target.ModuleName}' (\"bias\": \"{adapter.Config.Bias}\" in {LoraConfig.FileName}), but that linear of the base model has none; use an adapter trained for this base model");
            var lora = new LoraLinear(target.Linear, w.Rank, w.Scaling);
            lora.SetWeights(w.A.to(model.Device), w.B.to(model.Device));
            if (w.Bias is not null)
                using (no_grad()) target.Linear.bias?.copy_(w.Bias);
            if (merge) lora.Merge();
            target.Replace(lora);
            applied[target.ModuleName] = lora;
        }
        foreach (var p in applied.Values.SelectMany(l => new[] { l.lora_A, l.lora_B })) p.requires_grad = false;
        return applied;
    }

    /// <summary>The adapter of trained <paramref name="modules"/> in PEFT form (tensors copied to the CPU).</summary>
    public static PeftAdapter ToAdapter(string name, LoraConfig config, IReadOnlyDictionary<string, LoraLinear> modules)
    {
        var weights = new SortedDictionary<string, LoraWeights>(StringComparer.Ordinal);
        foreach (var (module, lora) in modules)
        {
            using var _ = no_grad();
            weights[module] = new LoraWeights(lora.lora_A.detach().cpu().clone(), lora.lora_B.detach().cpu().clone(),
                lora.Scaling, config.AlphaFor(module));
        }
        return PeftAdapter.Create(name, config, weights);
    }

    private static string Describe(LoraConfig config) =>
        config.TargetModulesRegex is { } regex ? $"'{regex}'" : "[" + string.Join(", ", config.TargetModules) + "]";
}
