using System.Text.Encodings.Web;
using System.Text.Json;

namespace LoraMixer.Server;

/// <summary>How responses are written: compact, UTF-8 text left readable.</summary>
internal static class Json
{
    public static JsonSerializerOptions Options { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
