namespace LoraMixer.Errors;

/// <summary>
/// A training or evaluation data file is missing or malformed (bad JSON, a missing field, an unknown task). The message names the file and line.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public DataFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public DataFormatException(string message, Exception inner) : base(message, inner) { }
}
