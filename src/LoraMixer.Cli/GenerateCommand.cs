using System.CommandLine;
using System.Text.Json.Nodes;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Cli;

/// <summary><c>generate</c>: continue one or more prompts, streaming the text as it is produced.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var prompt = new Option<string[]>("--prompt", "-p")
        {
            Description = "Prompt text; repeat for a batch (generated together, with padding)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most new tokens", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass (1 = off)", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => 0 };
        var stop = new Option<string[]>("--stop") { Description = "Stop before this string (\\n, \\t escapes allowed); repeatable" };
        var jsonl = new Option<string?>("--jsonl") { Description = "Also write one JSON object per prompt here: prompt, text, token_ids, finish_reason, prompt_tokens, generated_tokens" };
        var command = new Command("generate", "Generate text from a model folder")
        {
            model, prompt, maxTokens, temperature, topP, topK, seed, stop, jsonl, device,
        };
        var adaptation = new ModelAdaptation();
        foreach (var option in adaptation.Options) command.Add(option);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = result.GetValue(maxTokens),
                Temperature = result.GetValue(temperature),
                TopP = result.GetValue(topP),
                TopK = result.GetValue(topK),
                Seed = result.GetValue(seed),
                StopStrings = (result.GetValue(stop) ?? Array.Empty<string>()).Select(Unescape).ToArray(),
            };
            options.Validate();
            adaptation.Validate(result);
            // Claimed before the model loads, so a bad path costs nothing.
            string? jsonlPath = result.GetValue(jsonl) is string j ? Path.GetFullPath(j) : null;
            using var claim = jsonlPath is null ? null : OutputFolder.ClaimFile(jsonlPath, "--jsonl");
            string dir = result.GetValue(model)!;
            var torchDevice = CommonOptions.ResolveDevice(result, device);
            using var lm = ModelLoader.LoadCausalLM(dir, torchDevice);
            using var adapted = adaptation.Apply(result, lm);
            var tokenizer = TokenizerLoader.Load(dir);
            var generator = new TextGenerator(lm, tokenizer, ModelStructure.EosTokenIds(lm));
            string[] prompts = result.GetValue(prompt)!;

            if (prompts.Length == 1)
            {
                // The prompt is echoed with the first new text (or at the end), never before a refusal such as an over-long prompt.
                bool echoed = false;
                void Echo()
                {
                    if (echoed) return;
                    echoed = true;
                    Console.Write(prompts[0]);
                }
                var single = generator.Generate(prompts, options, (_, text) => { Echo(); Console.Write(text); Console.Out.Flush(); });
                Echo();
                Console.WriteLine();
                WriteJsonl(jsonlPath, prompts, single, tokenizer);
                return 0;
            }
            var outputs = generator.Generate(prompts, options);
            for (int i = 0; i < prompts.Length; i++)
            {
                Console.WriteLine($"--- [{i}] ({outputs[i].TokenIds.Count} tokens, {outputs[i].FinishReason})");
                Console.WriteLine(prompts[i] + outputs[i].Text);
            }
            WriteJsonl(jsonlPath, prompts, outputs, tokenizer);
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// One JSON object per prompt, in prompt order: the prompt, the generated text, its token ids, why it stopped
    /// (eos, stop_string, length) and the prompt's and the generation's token counts.
    /// </summary>
    private static void WriteJsonl(string? path, IReadOnlyList<string> prompts, IReadOnlyList<GenerationResult> outputs, ITokenizer tokenizer)
    {
        if (path is null) return;
        var lines = prompts.Select((p, i) => new JsonObject
        {
            ["index"] = i,
            ["prompt"] = p,
            ["text"] = outputs[i].Text,
            ["token_ids"] = new JsonArray(outputs[i].TokenIds.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
            ["finish_reason"] = outputs[i].FinishReason switch
            {
                FinishReason.Eos => "eos", FinishReason.StopString => "stop_string", _ => "length",
            },
            ["prompt_tokens"] = tokenizer.Encode(p, addBos: true).Count,
            ["generated_tokens"] = outputs[i].TokenIds.Count,
        }.ToJsonString());
        OutputFolder.WriteText(path, string.Join("\n", lines) + "\n");
        Console.Error.WriteLine($"wrote {path}");
    }

    /// <summary>Turns the two-character sequences \n, \t, \r and \\ typed on a shell into the characters.</summary>
    internal static string Unescape(string s) =>
        s.Replace("\\\\", "\u0000").Replace("\\n", "\n").Replace("\\t", "\t").Replace("\\r", "\r").Replace("\u0000", "\\");
}
