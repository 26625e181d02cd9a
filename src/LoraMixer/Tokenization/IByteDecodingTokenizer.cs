namespace LoraMixer.Tokenization;

/// <summary>A tokenizer whose decoding is defined byte by byte, which lets streaming decode stay exact.</summary>
internal interface IByteDecodingTokenizer
{
    /// <summary>Creates the per-sequence writer that <see cref="ITokenizer.Decode"/> uses.</summary>
    TokenByteWriter CreateByteWriter(bool skipSpecialTokens);
}
