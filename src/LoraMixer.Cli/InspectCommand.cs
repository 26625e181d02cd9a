using System.CommandLine;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>inspect DIR</c>: what a model folder holds, checked against its config.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("model-dir") { Description = "Hugging Face model folder" };
        var command = new Command("inspect", "Show a model folder's architecture, sizes, weights and tokenizer") { dir };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string path = result.GetValue(dir)!;
            var table = new Table().AddColumn("field").AddColumn("value").HideHeaders();
            void Row(string k, object? v) => table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToString() ?? "-"));
            // The config first: an unsupported architecture is the more useful message than missing weights.
            var family = ModelFamilies.ForModelFolder(path);
            using var checkpoint = SafeTensorsCheckpoint.Open(path);
            Row("family", family.Description);
            foreach (var (field, value) in family.Inspect(path, checkpoint)) Row(field, value);
            Row("weight tensors", checkpoint.Names.Count);
            try
            {
                var tokenizer = TokenizerLoader.Load(path);
                Row("tokenizer", $"{tokenizer.GetType().Name}, {tokenizer.VocabSize} tokens, BOS {tokenizer.BosId?.ToString() ?? "none"}, EOS {tokenizer.EosId?.ToString() ?? "none"}");
            }
            catch (Errors.ModelFormatException e)
            {
                Row("tokenizer", "not usable: " + e.Message);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
