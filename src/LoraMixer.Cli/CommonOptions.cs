using System.CommandLine;
using LoraMixer.Runtime;
using TorchSharp;

namespace LoraMixer.Cli;

/// <summary>Options every command shares, and the one place that turns failures into one-line errors.</summary>
internal static class CommonOptions
{
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Print full exception details on errors",
        Recursive = true,
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "cpu, cuda or cuda:N (CUDA needs a TorchSharp-cuda build)",
        DefaultValueFactory = _ => "cpu",
    };

    public static Option<string?> Quantize() => new("--quantize")
    {
        Description = "int8: weight-only int8 with one scale per 32 inputs for CPU decoding (reads a quarter of the weight bytes per token; see README, Benchmarks)",
    };

    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Hugging Face model folder (config.json + *.safetensors + tokenizer files)",
        Required = true,
    };

    public static torch.Device ResolveDevice(ParseResult result, Option<string> device) =>
        TorchRuntime.ParseDevice(result.GetValue(device) ?? "cpu");

    /// <summary>Runs a command body; user errors become one line on stderr and exit code 1.</summary>
    public static int Run(ParseResult result, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var user = UserMessage(e);
            if (result.GetValue(Verbose) || user is null)
                Console.Error.WriteLine(e.ToString());
            else
                Console.Error.WriteLine("error: " + user);
            return 1;
        }
    }

    private static string? UserMessage(Exception e) => e switch
    {
        _ when IoMessage.IsRaw(e) => IoMessage.Describe(e),
        Errors.ModelFormatException or Errors.AdapterMismatchException or Errors.DataFormatException or ArgumentException or InvalidDataException or FileNotFoundException
            or DirectoryNotFoundException or UnauthorizedAccessException or OperationCanceledException => e.Message,
        IOException => e.Message,
        _ => e.Message + " (run with --verbose for details)",
    };
}
