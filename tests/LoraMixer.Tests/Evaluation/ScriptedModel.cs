using LoraMixer.Models;
using LoraMixer.Models.Modules;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Evaluation;

/// <summary>
/// Test double: whatever the prompt, decoding emits <c>script</c> token by token, then EOS. It records each
/// prompt it is given (decoded), so tests can check the prompts the evaluators build. With an
/// <c>alternative</c> script, the first token where the two differ gets equal logits for both, so sampling
/// follows either one; <see cref="Branches"/> records, per sequence in the order seen, which one it took
/// (0: the script, 1: the alternative).
/// </summary>
public sealed class ScriptedModel(ITokenizer tokenizer, string script, string? alternative = null, int maxPositionEmbeddings = 4096) : ICausalLM
{
    private readonly IReadOnlyList<int>[] _scripts = alternative is null
        ? [tokenizer.Encode(script, addBos: false)]
        : [tokenizer.Encode(script, addBos: false), tokenizer.Encode(alternative, addBos: false)];
    private int _sequencesSeen;

    public List<string> Prompts { get; } = new();
    public List<int> Branches { get; } = new();
    public void Dispose() { }
    public IModelFamily Family => throw new NotSupportedException("a scripted model belongs to no model family");
    public Device Device => CPU;
    public int VocabSize => tokenizer.VocabSize;
    public int MaxPositionEmbeddings => maxPositionEmbeddings;

    public IInferenceCache CreateCache(long batch, int capacity) => new StepCache();

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false)
    {
        using var scope = NewDisposeScope();
        var step = (StepCache)(cache ?? new StepCache());
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var ids = inputIds.data<long>().ToArray();
        if (step.Calls == 0)
        {
            step.First = _sequencesSeen;
            _sequencesSeen += (int)b;
            Branches.AddRange(Enumerable.Repeat(-1, (int)b));
            step.Generated = Enumerable.Range(0, (int)b).Select(_ => new List<int>()).ToArray();
            for (int row = 0; row < b; row++)
            {
                var rowIds = ids.Skip(row * (int)t).Take((int)t).Select(i => (int)i).ToList();
                if (attentionMask is not null)
                {
                    var mask = attentionMask[row].data<long>().ToArray();
                    rowIds = rowIds.Where((_, j) => mask[j] != 0).ToList();
                }
                Prompts.Add(tokenizer.Decode(rowIds));
            }
        }
        else
        {
            for (int row = 0; row < b; row++) step.Generated[row].Add((int)ids[row]);
        }
        step.Calls++;
        step.Length += (int)t;
        long positions = lastPositionOnly ? 1 : t;
        var logits = zeros(new[] { b, positions, (long)VocabSize });
        for (int row = 0; row < b; row++)
        {
            var done = step.Generated[row];
            var consistent = Enumerable.Range(0, _scripts.Length).Where(s => _scripts[s].Take(done.Count).SequenceEqual(done)).ToArray();
            if (consistent.Length == 1) Branches[step.First + row] = consistent[0];
            foreach (int s in consistent)
            {
                int next = done.Count < _scripts[s].Count ? _scripts[s][done.Count] : tokenizer.EosId!.Value;
                logits[row].select(1, next).fill_(10f);
            }
        }
        return logits.MoveToOuterDisposeScope();
    }

    private sealed class StepCache : IInferenceCache
    {
        public int Calls;
        public int First;
        public List<int>[] Generated = [];
        public int Length { get; set; }
        public ObserverState ObserverState { get; } = new();
        public void Dispose() => ObserverState.Dispose();
    }
}
