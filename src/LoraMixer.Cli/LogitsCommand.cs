using System.CommandLine;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Cli;

/// <summary><c>logits</c>: the model's float32 logits [T, vocab] for given ids, as a NumPy .npy file.</summary>
internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, e.g. 1,15043,3186" };
        var text = new Option<string>("--text") { Description = "Text to tokenize (with BOS) instead of --ids" };
        var output = new Option<string>("--out", "-o") { Description = "Output .npy file", Required = true };
        var command = new Command("logits", "Write the logits of a token sequence as float32 [T, vocab] .npy")
        {
            model, ids, text, output, device,
        };
        var adaptation = new ModelAdaptation();
        foreach (var option in adaptation.Options) command.Add(option);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string dir = result.GetValue(model)!;
            adaptation.Validate(result);
            string path = result.GetValue(output)!;
            using var claim = OutputFolder.ClaimFile(path, "--out");
            int[] tokens = (result.GetValue(ids), result.GetValue(text)) switch
            {
                (string list, null) => ParseIds(list),
                (null, string t) => TokenizerLoader.Load(dir).Encode(t, addBos: true).ToArray(),
                _ => throw new ArgumentException("give exactly one of --ids and --text"),
            };
            using var lm = ModelLoader.LoadCausalLM(dir, CommonOptions.ResolveDevice(result, device));
            using var adapted = adaptation.Apply(result, lm);
            if (tokens.Length == 0) throw new ArgumentException("--ids is empty");
            if (tokens.Length > lm.MaxPositionEmbeddings)
                throw new ArgumentException(
                    $"the sequence has {tokens.Length} tokens but the model accepts at most {lm.MaxPositionEmbeddings} (max_position_embeddings); give fewer --ids or a shorter --text");
            int bad = Array.FindIndex(tokens, t => t < 0 || t >= lm.VocabSize);
            if (bad >= 0) throw new ArgumentException($"--ids: id {tokens[bad]} at position {bad} is outside the vocabulary [0, {lm.VocabSize})");

            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var input = tensor(tokens.Select(t => (long)t).ToArray(), new long[] { 1, tokens.Length }).to(lm.Device);
            var logits = lm.Forward(input)[0].to(CPU);
            NpyFile.WriteFloat32(path, logits);
            Console.Error.WriteLine($"wrote {path}: float32 [{tokens.Length}, {lm.VocabSize}]");
            return 0;
        }));
        return command;
    }

    internal static int[] ParseIds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return parts.Select((p, i) => int.TryParse(p, out int v) ? v
            : throw new ArgumentException($"--ids: '{p}' (item {i + 1}) is not an integer; write ids like 1,15043,3186")).ToArray();
    }
}
