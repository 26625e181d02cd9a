using System.CommandLine;
using LoraMixer.Conversion;

namespace LoraMixer.Cli;

/// <summary><c>convert llama2c</c>: turn a llama2.c checkpoint into a Hugging Face model folder.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var checkpoint = new Argument<string>("model.bin") { Description = "llama2.c checkpoint (version 0 format)" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "llama2.c tokenizer.bin", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write", Required = true };
        var llama2c = new Command("llama2c", "Convert a llama2.c model.bin + tokenizer.bin into a Hugging Face folder")
        {
            checkpoint, tokenizer, output,
        };
        llama2c.SetAction(result => CommonOptions.Run(result, () =>
        {
            string outDir = result.GetValue(output)!;
            using var claim = OutputFolder.ClaimFolder(outDir, "--out");
            Llama2cConverter.Convert(result.GetValue(checkpoint)!, result.GetValue(tokenizer)!, outDir);
            Console.WriteLine($"wrote {outDir}");
            return 0;
        }));
        return new Command("convert", "Import models from other formats") { llama2c };
    }
}
