using LoraMixer.Models;
using LoraMixer.Models.Modules;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Evaluation;

/// <summary>
/// Test double: whatever the prompt, greedy decoding emits <c>script</c> token by token, then EOS. It records each
/// prompt it is given (decoded), so tests can check the prompts the evaluators build.
/// </summary>
public sealed class ScriptedModel(ITokenizer tokenizer, string script) : ICausalLM
{
    private readonly IReadOnlyList<int> _script = tokenizer.Encode(script, addBos: false);

    public List<string> Prompts { get; } = new();
    public void Dispose() { }
    public Device Device => CPU;
    public int VocabSize => tokenizer.VocabSize;
    public int MaxPositionEmbeddings => 4096;

    public IInferenceCache CreateCache(long batch, int capacity) => new StepCache();

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false)
    {
        using var scope = NewDisposeScope();
        var step = (StepCache)(cache ?? new StepCache());
        long b = inputIds.shape[0], t = inputIds.shape[1];
        if (step.Calls == 0)
        {
            var ids = inputIds.data<long>().ToArray();
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
        int next = step.Calls < _script.Count ? _script[step.Calls] : tokenizer.EosId!.Value;
        step.Calls++;
        step.Length += (int)t;
        long positions = lastPositionOnly ? 1 : t;
        var logits = zeros(new[] { b, positions, (long)VocabSize });
        logits.index_fill_(2, tensor(new long[] { next }), 10f);
        return logits.MoveToOuterDisposeScope();
    }

    private sealed class StepCache : IInferenceCache
    {
        public int Calls;
        public int Length { get; set; }
        public void Dispose() { }
    }
}
