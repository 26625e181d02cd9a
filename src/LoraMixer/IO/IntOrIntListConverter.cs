using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraMixer.IO;

/// <summary>Reads a field Hugging Face writes as one integer or a list of them (e.g. <c>eos_token_id</c>).</summary>
internal sealed class IntOrIntListConverter : JsonConverter<int[]>
{
    private static readonly WholeNumberConverter Item = new();

    /// <inheritdoc />
    public override int[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray) return new[] { Item.Read(ref reader, typeof(int), options) };
        var items = new List<int>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) items.Add(Item.Read(ref reader, typeof(int), options));
        return items.ToArray();
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, int[] value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (int v in value) writer.WriteNumberValue(v);
        writer.WriteEndArray();
    }
}
