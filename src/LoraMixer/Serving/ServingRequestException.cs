namespace LoraMixer.Serving;

/// <summary>
/// A request the server refuses, with what an OpenAI-style error carries: the HTTP status, the error type, the
/// request field at fault and a machine-readable code.
/// </summary>
public sealed class ServingRequestException : Exception
{
    /// <summary>Creates the error.</summary>
    public ServingRequestException(int status, string message, string? param = null, string? code = null, string? type = null)
        : base(message)
    {
        Status = status;
        Param = param;
        Code = code;
        Type = type ?? status switch
        {
            401 => "authentication_error",
            404 => "invalid_request_error",
            429 => "rate_limit_error",
            >= 500 => "server_error",
            _ => "invalid_request_error",
        };
    }

    /// <summary>HTTP status: 400, 401, 404, 429, 503.</summary>
    public int Status { get; }

    /// <summary>The request field at fault, or null.</summary>
    public string? Param { get; }

    /// <summary>A short code such as <c>model_not_found</c>, or null.</summary>
    public string? Code { get; }

    /// <summary>OpenAI's error type, e.g. <c>invalid_request_error</c>.</summary>
    public string Type { get; }

    /// <summary>400 for a bad field.</summary>
    public static ServingRequestException Invalid(string message, string? param = null, string? code = null) => new(400, message, param, code);
}
