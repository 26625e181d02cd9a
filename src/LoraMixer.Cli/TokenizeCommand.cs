using System.CommandLine;
using System.Text.Json;
using LoraMixer.Tokenization;

namespace LoraMixer.Cli;

/// <summary><c>tokenize</c>: print the ids of a text as a JSON array.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer", "-t")
        {
            Description = "Model folder, tokenizer.json, tokenizer.model or tokenizer.bin",
            Required = true,
        };
        var text = new Option<string>("--text") { Description = "Text to encode", Required = true };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not prepend the BOS token" };
        var command = new Command("tokenize", "Print the token ids of a text as a JSON array") { tokenizer, text, noBos };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            var tok = TokenizerLoader.Load(result.GetValue(tokenizer)!);
            var ids = tok.Encode(result.GetValue(text)!, addBos: !result.GetValue(noBos));
            Console.WriteLine(JsonSerializer.Serialize(ids));
            return 0;
        }));
        return command;
    }
}
