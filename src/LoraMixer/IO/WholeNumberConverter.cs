using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraMixer.IO;

/// <summary>
/// Reads an <see cref="int"/> from a JSON number that is whole and non-negative (<c>2</c> or <c>2.0</c>), as
/// Python writes config sizes; anything else fails so that <see cref="HfConfigFile"/> names the field.
/// </summary>
internal sealed class WholeNumberConverter : JsonConverter<int>
{
    /// <inheritdoc />
    public override int Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out double x)
            && x == Math.Floor(x) && x is >= 0 and <= int.MaxValue)
            return (int)x;
        throw new JsonException("expected a non-negative integer");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, int value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}
