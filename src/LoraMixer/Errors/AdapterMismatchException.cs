namespace LoraMixer.Errors;

/// <summary>
/// An adapter or mixer does not fit the base model it is applied to (a module is missing, or shapes, architecture or layer count differ). The message names the module and both shapes.
/// </summary>
public sealed class AdapterMismatchException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public AdapterMismatchException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public AdapterMismatchException(string message, Exception inner) : base(message, inner) { }
}
