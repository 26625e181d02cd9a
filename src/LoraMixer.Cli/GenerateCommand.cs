using System.CommandLine;
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
        var command = new Command("generate", "Generate text from a model folder")
        {
            model, prompt, maxTokens, temperature, topP, topK, seed, stop, device,
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
                generator.Generate(prompts, options, (_, text) => { Echo(); Console.Write(text); Console.Out.Flush(); });
                Echo();
                Console.WriteLine();
                return 0;
            }
            var outputs = generator.Generate(prompts, options);
            for (int i = 0; i < prompts.Length; i++)
            {
                Console.WriteLine($"--- [{i}] ({outputs[i].TokenIds.Count} tokens, {outputs[i].FinishReason})");
                Console.WriteLine(prompts[i] + outputs[i].Text);
            }
            return 0;
        }));
        return command;
    }

    /// <summary>Turns the two-character sequences \n, \t, \r and \\ typed on a shell into the characters.</summary>
    internal static string Unescape(string s) =>
        s.Replace("\\\\", "\u0000").Replace("\\n", "\n").Replace("\\t", "\t").Replace("\\r", "\r").Replace("\u0000", "\\");
}
