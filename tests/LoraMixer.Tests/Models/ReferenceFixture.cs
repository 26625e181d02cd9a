using System.Text.Json;

namespace LoraMixer.Tests.Models;

/// <summary>A tiny model folder under Fixtures/models with logits from tests/reference/reference_llama.py.</summary>
public sealed record ReferenceFixture(string Dir, IReadOnlyList<(long[] Ids, float[][] Logits)> Cases)
{
    public static readonly string[] Names = { "tiny-llama", "tiny-qwen2", "tiny-mistral" };

    public static ReferenceFixture Load(string name)
    {
        string dir = Path.Combine(TestPaths.Fixtures, "models", name);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => (
            c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
            c.GetProperty("logits").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray()
        )).ToList();
        return new ReferenceFixture(dir, cases);
    }
}
