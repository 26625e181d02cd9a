namespace LoraMixer.Tokenization;

/// <summary>Loads a tokenizer from a model folder or a tokenizer file (STUB: to be implemented).</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// <paramref name="path"/>: a model folder (tokenizer.json, else tokenizer.model, else tokenizer.bin;
    /// tokenizer_config.json / config.json give BOS/EOS), or one of those files.
    /// </summary>
    public static ITokenizer Load(string path) => throw new NotImplementedException();
}
