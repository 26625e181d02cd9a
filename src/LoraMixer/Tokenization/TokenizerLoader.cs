using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>Loads a tokenizer from a model folder or a tokenizer file.</summary>
public static class TokenizerLoader
{
    private const string Accepted = "a model folder containing tokenizer.json, tokenizer.model or tokenizer.bin, or one of those files";

    /// <summary>
    /// <paramref name="path"/>: a model folder (tokenizer.json, else tokenizer.model, else tokenizer.bin;
    /// tokenizer_config.json / config.json give BOS/EOS), or one of those files.
    /// </summary>
    /// <remarks>
    /// A file is recognised by its extension (.json Hugging Face, .model SentencePiece, .bin llama2.c), so
    /// llama2.c's tok512.bin loads too. The configs beside a file are read as they would be for its folder.
    /// </remarks>
    /// <exception cref="ModelFormatException">The path is missing, holds no tokenizer, or the file is malformed.</exception>
    public static ITokenizer Load(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new ModelFormatException($"No tokenizer path given; pass {Accepted}.");
        if (Directory.Exists(path))
        {
            foreach (string name in new[] { "tokenizer.json", "tokenizer.model", "tokenizer.bin" })
            {
                string candidate = Path.Combine(path, name);
                if (File.Exists(candidate)) return LoadFile(candidate, TokenizerSettings.FromFolder(path));
            }
            throw new ModelFormatException($"No tokenizer in {path}: expected tokenizer.json, tokenizer.model or tokenizer.bin; copy the model's tokenizer file into the folder.");
        }
        if (File.Exists(path))
        {
            string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
            return LoadFile(path, TokenizerSettings.FromFolder(folder));
        }
        throw new ModelFormatException($"Tokenizer path {path} does not exist; pass {Accepted}.");
    }

    private static ITokenizer LoadFile(string path, TokenizerSettings settings) =>
        Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" => HuggingFaceTokenizer.Load(path, settings),
            ".model" => SentencePieceTokenizer.Load(path, settings),
            ".bin" => Llama2cTokenizer.Load(path, settings),
            _ => throw new ModelFormatException($"{path} is not a tokenizer file; pass {Accepted}."),
        };
}
