using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Serving;

/// <summary>
/// One loaded model the decode loop runs: the plain base, the base with every adapter as an expert of one mixer
/// (plus an all-zero expert that stands for the base itself), or a LoRA-Mixer. Sets the routing of a batch before
/// each forward pass and reads back which experts the routers chose.
/// </summary>
internal sealed class ModelRunner : IDisposable
{
    private readonly string[] _expertNames;

    public ModelRunner(string label, ICausalLM model, LoraMixerModel? mixer, IReadOnlyList<string> expertNames, int? baseExpert)
    {
        Label = label;
        Model = model;
        Mixer = mixer;
        _expertNames = expertNames.ToArray();
        BaseExpert = baseExpert;
        using (var probe = model.CreateCache(1, 1)) Batched = probe is KvCache;
    }

    /// <summary>The name metrics use for this model.</summary>
    public string Label { get; }

    public ICausalLM Model { get; }

    /// <summary>The mixer whose routing requests choose; null for a plain model.</summary>
    public LoraMixerModel? Mixer { get; }

    /// <summary>Expert names in router order (the adapter bank's last one is the base).</summary>
    public IReadOnlyList<string> ExpertNames => _expertNames;

    /// <summary>The adapter bank's all-zero expert, which leaves the base unchanged.</summary>
    public int? BaseExpert { get; }

    /// <summary>True when rows of different lengths can share one batch (a key/value cache); else each row runs alone.</summary>
    public bool Batched { get; }

    /// <summary>Sets the routing of the next forward pass; <paramref name="rowExperts"/> [B] for per-row routing.</summary>
    public void Apply(LaneRouting routing, IReadOnlyList<int>? rowExperts)
    {
        if (Mixer is null) return;
        var slots = Mixer.Slots;
        switch (routing.Mode)
        {
            case LaneRoutingMode.PerRowExpert:
            {
                Mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
                var ids = tensor(rowExperts!.Select(e => (long)e).ToArray(), device: Model.Device).DetachFromDisposeScope();
                foreach (var s in slots) s.AllowedExperts = null;
                // One tensor shared by every slot (they only read it), owned here.
                Mixer.SetHardExperts(ids);
                _hardExperts?.Dispose();
                _hardExperts = ids;
                break;
            }
            case LaneRoutingMode.TopK:
            {
                Mixer.SetRouting(Mixer.Config.InferenceRouting with { Mode = RoutingMode.TopK, TopK = routing.TopK });
                Mixer.SetHardExperts(null);
                var allowed = routing.Allowed is null ? null : AllowedMask(routing);
                foreach (var s in slots) s.AllowedExperts = allowed;
                break;
            }
            default:
                Mixer.SetRouting(Mixer.Config.InferenceRouting);
                Mixer.SetHardExperts(null);
                foreach (var s in slots) s.AllowedExperts = null;
                break;
        }
    }

    private Tensor? _hardExperts;
    private readonly Dictionary<string, Tensor> _masks = new(StringComparer.Ordinal);

    private Tensor AllowedMask(LaneRouting routing)
    {
        if (_masks.TryGetValue(routing.Key, out var mask)) return mask;
        mask = tensor(routing.Allowed!.ToArray(), device: Model.Device).DetachFromDisposeScope();
        _masks[routing.Key] = mask;
        return mask;
    }

    /// <summary>
    /// After a forward pass of <paramref name="rows"/> rows of <paramref name="tokensPerRow"/> tokens each: adds the
    /// experts the routers chose to each row's counts and to <paramref name="metrics"/>.
    /// </summary>
    public void CollectRouting(LaneRouting routing, IReadOnlyList<ServingRow> rows, int tokensPerRow, ServingMetrics metrics)
    {
        if (Mixer is null || routing.Mode == LaneRoutingMode.None) return;
        var slots = Mixer.Slots;
        if (routing.Mode == LaneRoutingMode.PerRowExpert)
        {
            foreach (var row in rows)
            {
                row.RoutedTokens += tokensPerRow;
                int e = row.HardExpert!.Value;
                if (e == BaseExpert) continue;
                row.ExpertCounts[e] += (long)tokensPerRow * slots.Count;
                foreach (var s in slots) metrics.RecordExpertLoad(Label, s.LayerIndex, _expertNames[e], tokensPerRow);
            }
            return;
        }
        foreach (var row in rows) row.RoutedTokens += tokensPerRow;
        var layerCounts = new long[_expertNames.Length];
        foreach (var s in slots)
        {
            long[] chosen;
            int k;
            if (s.DecodedTopK > 0)
            {
                // The decode kernel's choices (it leaves Current as the last TorchSharp pass set it).
                k = s.DecodedTopK;
                chosen = Array.ConvertAll(s.DecodedExperts[..(s.DecodedRows * k)], e => (long)e);
            }
            else
            {
                var indices = s.Current.TopIndices;
                if (indices is null) continue;
                using (var cpu = indices.cpu()) chosen = cpu.data<long>().ToArray();
                k = (int)indices.shape[1];
            }
            Array.Clear(layerCounts);
            for (int r = 0; r < rows.Count; r++)
            {
                var counts = rows[r].ExpertCounts;
                for (int j = r * tokensPerRow * k; j < (r + 1) * tokensPerRow * k && j < chosen.Length; j++)
                {
                    counts[chosen[j]]++;
                    layerCounts[chosen[j]]++;
                }
            }
            for (int e = 0; e < layerCounts.Length; e++) metrics.RecordExpertLoad(Label, s.LayerIndex, _expertNames[e], layerCounts[e]);
        }
    }

    public void Dispose()
    {
        _hardExperts?.Dispose();
        foreach (var m in _masks.Values) m.Dispose();
        Mixer?.Dispose();
        Model.Dispose();
    }
}
