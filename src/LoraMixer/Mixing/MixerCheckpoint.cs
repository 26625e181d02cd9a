using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Lora;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// Reads and writes a LoRA-Mixer folder (docs/method.md §7): <c>mixer_config.json</c>, <c>router.safetensors</c>
/// and <c>experts/&lt;name&gt;/</c> as plain PEFT adapters.
/// </summary>
public static class MixerCheckpoint
{
    /// <summary>File holding the router weights.</summary>
    public const string RouterFile = "router.safetensors";

    /// <summary>
    /// Writes the mixer to <paramref name="dir"/>. The folder is assembled beside the target and renamed
    /// into place, so an interrupted save never leaves a half-written mixer.
    /// </summary>
    public static void Save(LoraMixerModel mixer, string dir)
    {
        dir = Path.GetFullPath(dir);
        string parent = Path.GetDirectoryName(dir)!;
        Directory.CreateDirectory(parent);
        string temp = dir + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            Directory.CreateDirectory(temp);
            var experts = mixer.Config.Experts.Select(e => new MixerExpert(e.Name, "experts/" + e.Name)).ToArray();
            for (int e = 0; e < experts.Length; e++)
            {
                using var adapter = ExpertAdapter(mixer, e);
                adapter.Save(Path.Combine(temp, experts[e].Path));
            }
            using (var scope = NewDisposeScope())
                SafeTensorsWriter.Write(Path.Combine(temp, RouterFile), mixer.RouterParameters()
                    .Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.detach().cpu().contiguous()))
                    .Concat(mixer.RouterBuffers().Select(b => new KeyValuePair<string, Tensor>(b.Key, b.Value.detach().cpu().contiguous()))),
                    new Dictionary<string, string> { ["format"] = "pt" });
            (mixer.Config with { Experts = experts }).Save(temp);
            ReplaceDirectory(temp, dir);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Expert <paramref name="expert"/> of the mixer as a PEFT adapter (tensors on the CPU).</summary>
    public static PeftAdapter ExpertAdapter(LoraMixerModel mixer, int expert)
    {
        var config = mixer.ExpertConfigs[expert];
        var modules = new SortedDictionary<string, LoraWeights>(StringComparer.Ordinal);
        foreach (var p in mixer.Projections)
        {
            if (p.GetExpert(expert) is not var (a, b)) continue;
            modules[p.ModuleName] = new LoraWeights(a.cpu(), b.cpu(), p.Scalings[expert], config.AlphaFor(p.ModuleName));
        }
        return PeftAdapter.Create(mixer.Config.Experts[expert].Name, config, modules);
    }

    /// <summary>
    /// Loads the mixer in <paramref name="dir"/> onto <paramref name="model"/>, after checking that it was
    /// made for this base (architecture, hidden size, layer count) and that every expert fits.
    /// </summary>
    /// <param name="model">The base model.</param>
    /// <param name="dir">The mixer folder.</param>
    /// <param name="freshRouters">
    /// When given, the saved routers are not read: the config is changed by this function (e.g. another router
    /// input) and the routers start at zero, ready for stage 2.
    /// </param>
    public static LoraMixerModel Load(ICausalLM model, string dir, Func<MixerConfig, MixerConfig>? freshRouters = null)
    {
        var config = MixerConfig.Load(dir);
        if (freshRouters is not null) config = freshRouters(config);
        CheckBase(config, model, dir);
        var adapters = new List<PeftAdapter>();
        try
        {
            var shapes = TargetLinears.WeightShapes(model);
            foreach (var expert in config.Experts)
            {
                string path = Path.Combine(dir, expert.Path);
                var adapter = PeftAdapter.Load(path, expert.Name);
                adapters.Add(adapter);
                adapter.CheckAgainst(shapes, $"the base model of mixer {dir}");
                var outside = TargetLinears.Targetable(model).Where(PlugAndPlayTargets.ShortNames(adapter).Except(config.Targets).Contains).ToArray();
                if (outside.Length > 0)
                    throw new ModelFormatException(
                        $"{dir}: expert '{expert.Name}' holds {string.Join(", ", outside)}, outside the mixer's targets [{string.Join(", ", config.Targets)}]; add them to \"targets\" in mixer_config.json");
            }
            var mixer = FromAdapters(model, config, adapters);
            if (freshRouters is null) LoadRouters(mixer, Path.Combine(dir, RouterFile));
            return mixer;
        }
        finally
        {
            foreach (var a in adapters) a.Dispose();
        }
    }

    /// <summary>
    /// Builds a mixer over existing adapters (plug-and-play); routers start at zero. Experts may adapt
    /// different modules: an expert contributes nothing on a projection it does not adapt. Modules outside
    /// <see cref="MixerConfig.Targets"/> are left out (<see cref="PlugAndPlayTargets.Select"/> chooses the
    /// targets and names what they leave out); such an expert's config is narrowed to what it keeps
    /// (<see cref="LoraConfig.RestrictedTo"/>), so a saved expert's <c>adapter_config.json</c> targets exactly
    /// the modules its weights hold.
    /// </summary>
    /// <exception cref="AdapterMismatchException">
    /// An adapter does not fit the base, adapts none of the targets, or saves biases (<c>bias</c> other than
    /// <c>none</c> with bias tensors), which a mixer cannot keep per expert.
    /// </exception>
    public static LoraMixerModel FromAdapters(ICausalLM model, MixerConfig config, IReadOnlyList<PeftAdapter> adapters)
    {
        if (adapters.Count != config.Experts.Count)
            throw new ArgumentException($"{config.Experts.Count} experts in the config, {adapters.Count} adapters given");
        var shapes = TargetLinears.WeightShapes(model);
        foreach (var a in adapters)
        {
            a.CheckAgainst(shapes, $"the base model ({ModelStructure.Describe(model).Architecture})");
            if (a.Modules.FirstOrDefault(m => m.Value.Bias is not null) is { Value: not null } biased)
                throw new AdapterMismatchException(
                    $"adapter {Describe(a)}: {LoraConfig.FileName} field \"bias\" is \"{a.Config.Bias}\" and the weights hold biases (e.g. of {biased.Key}), which a mixer cannot keep one per expert; use an adapter trained with \"bias\": \"none\"");
        }
        bool Mixed(string module) => config.Targets.Contains(module[(module.LastIndexOf('.') + 1)..]);
        var uncovered = adapters.Where(a => !a.Modules.Keys.Any(Mixed)).Select(a => a.Name).ToArray();
        if (uncovered.Length > 0)
            throw new AdapterMismatchException(
                $"adapter(s) {string.Join(", ", uncovered)} adapt none of the mixer's targets ({string.Join(", ", config.Targets)}); add their modules with --targets");
        var layouts = adapters
            .Select(a => (Func<string, (int Rank, double Scaling)?>)(m => Mixed(m) && a.Modules.TryGetValue(m, out var w) ? (w.Rank, w.Scaling) : null))
            .ToArray();
        var configs = adapters
            .Select(a => a.Modules.Keys.All(Mixed) ? a.Config : a.Config.RestrictedTo(a.Modules.Keys.Where(Mixed).ToArray()))
            .ToArray();
        var mixer = LoraMixerModel.Attach(model, config, configs, layouts);
        foreach (var p in mixer.Projections)
            for (int e = 0; e < adapters.Count; e++)
                if (adapters[e].Modules.TryGetValue(p.ModuleName, out var w))
                    p.SetExpert(e, w.A.to(model.Device), w.B.to(model.Device));
        mixer.SetTrainable(routers: false, experts: false);
        return mixer;
    }

    /// <summary>Fails with a message naming what differs when <paramref name="config"/> was made for another base.</summary>
    public static void CheckBase(MixerConfig config, ICausalLM model, string source)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        var diffs = new List<string>();
        if (config.Architecture != architecture) diffs.Add($"architecture {config.Architecture} vs {architecture}");
        if (config.HiddenSize is int h && h != hidden) diffs.Add($"hidden size {h} vs {hidden}");
        if (config.NumHiddenLayers is int n && n != layers) diffs.Add($"layer count {n} vs {layers}");
        if (diffs.Count > 0)
            throw new AdapterMismatchException(
                $"mixer {source} was trained for another base model ({config.BaseModel}): {string.Join("; ", diffs)} (mixer vs this model)");
    }

    private static void LoadRouters(LoraMixerModel mixer, string file)
    {
        if (!File.Exists(file)) throw new ModelFormatException($"{file} is missing; a mixer folder needs its router weights");
        using var st = SafeTensorsFile.Open(file);
        using var noGrad = no_grad();
        // Without num_hidden_layers in the config, the router weights are what tie the mixer to its base: none may be left over.
        var expected = mixer.RouterParameters().Select(p => p.Key).Concat(mixer.Slots.SelectMany(s => new[] { s.Name + ".input_mean", s.Name + ".input_std" })).ToHashSet();
        if (st.Tensors.Keys.FirstOrDefault(k => !expected.Contains(k)) is string extra)
            throw new AdapterMismatchException(
                $"{file}: router weight '{extra}' has no place in this base model ({mixer.Slots.Count} routers, router_scope {(mixer.Config.RouterScope == RouterScope.Block ? "block" : "projection")}); the mixer was trained for another base model");
        foreach (var (key, weight) in mixer.RouterParameters())
        {
            if (!st.Contains(key))
                throw new ModelFormatException($"{file}: router weight '{key}' is missing (router_scope {mixer.Config.RouterScope})");
            using var value = st.Read(key);
            if (!value.shape.SequenceEqual(weight.shape))
                throw new ModelFormatException($"{file}: '{key}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", weight.shape)}]");
            weight.copy_(value);
        }
        if (mixer.Config.RouterInputNorm != RouterInputNorm.Standardize) return;
        foreach (var slot in mixer.Slots)
        {
            string meanKey = slot.Name + ".input_mean", stdKey = slot.Name + ".input_std";
            if (!st.Contains(meanKey) || !st.Contains(stdKey))
                throw new ModelFormatException($"{file}: '{meanKey}' or '{stdKey}' is missing (router_input_norm standardize)");
            using var mean = st.Read(meanKey);
            using var std = st.Read(stdKey);
            if (mean.numel() != slot.Router.InFeatures || std.numel() != slot.Router.InFeatures)
                throw new ModelFormatException($"{file}: '{meanKey}' and '{stdKey}' need {slot.Router.InFeatures} values each");
            if (!std.gt(0).all().item<bool>() || !mean.isfinite().all().item<bool>())
                throw new ModelFormatException($"{file}: '{stdKey}' must be positive and '{meanKey}' finite");
            slot.Router.SetStandardization(mean, std);
        }
    }

    private static string Describe(PeftAdapter adapter) =>
        adapter.Directory.Length > 0 ? $"{adapter.Directory} ('{adapter.Name}')" : $"'{adapter.Name}'";

    private static void ReplaceDirectory(string source, string destination)
    {
        if (!Directory.Exists(destination))
        {
            Directory.Move(source, destination);
            return;
        }
        string old = destination + ".old-" + Guid.NewGuid().ToString("N")[..8];
        Directory.Move(destination, old);
        Directory.Move(source, destination);
        Directory.Delete(old, recursive: true);
    }
}
