namespace LoraMixer.Errors;

/// <summary>
/// A model, tokenizer or weights file is missing, malformed or disagrees with its config. The message
/// names the file (and tensor or key) and says what to do; the CLI prints it as one line.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public ModelFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}
