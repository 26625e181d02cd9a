using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Tokenization;
using Xunit.Abstractions;

namespace LoraMixer.Tests.Tokenization;

/// <summary>
/// The SentencePiece-style tokenizer.json path at full scale: the Llama 2 vocabulary (read from ../shared's
/// tokenizer.bin) is turned into a tokenizer.json the way transformers' LlamaConverter does (merges from every
/// split of a piece into two pieces, ranked by the merged piece's score) and must reproduce SentencePiece's ids.
/// </summary>
public sealed class Llama2JsonFixtureTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void ConvertedLlama2TokenizerJson_EncodesFixtureTextsAsSentencePiece()
    {
        string bin = TestPaths.RequireShared("tokenizers", "llama2", "tokenizer.bin");
        string dir = TinyTokenizerFiles.WriteFolder(ConvertLlama2(bin));
        var tok = TokenizerLoader.Load(dir);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizers", "llama2_ids.json")));
        int total = 0, same = 0;
        var mismatches = new List<string>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            total++;
            string text = c.GetProperty("text").GetString()!;
            int[] want = [.. c.GetProperty("ids_with_bos").EnumerateArray().Select(x => x.GetInt32())];
            var got = tok.Encode(text);
            if (text.Contains("<s>") || text.Contains("</s>"))
            {
                // By design tokenizer.json splits added tokens out of the text, where SentencePiece does not.
                Assert.Contains(2, got.Skip(1));
                continue;
            }
            if (want.SequenceEqual(got)) same++;
            else mismatches.Add($"{JsonSerializer.Serialize(text)}: want [{string.Join(",", want)}] got [{string.Join(",", got)}]");
            Assert.Equal(c.GetProperty("decoded").GetString(), tok.Decode(want));
        }
        output.WriteLine($"converted tokenizer.json: {same}/{total - 1} texts without special-token strings match SentencePiece");
        Assert.Empty(mismatches);
    }

    private static JsonObject ConvertLlama2(string binPath)
    {
        var json = TinyTokenizerFiles.SentencePieceStyle();
        byte[] data = File.ReadAllBytes(binPath);
        var pieces = new List<string>();
        var scores = new List<float>();
        for (int pos = 4; pos < data.Length;)
        {
            float score = BitConverter.ToSingle(data, pos);
            int length = BitConverter.ToInt32(data, pos + 4);
            pieces.Add(Encoding.UTF8.GetString(data, pos + 8, length));
            scores.Add(score);
            pos += 8 + length;
        }
        // llama2.c's export turned ▁ into a space and dressed up <s> and </s>; undo that.
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal) { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int i = 3; i < pieces.Count; i++) vocab[i < 259 ? pieces[i] : pieces[i].Replace(' ', '\u2581')] = i;
        var byId = vocab.ToDictionary(kv => kv.Value, kv => kv.Key);

        var merges = new List<(string Left, string Right, float Score)>();
        foreach (var (piece, id) in vocab.OrderBy(kv => kv.Value))
        {
            if (id < 259) continue;
            var local = new List<(string, string, float)>();
            for (int split = 1; split < piece.Length; split++)
            {
                if (char.IsLowSurrogate(piece[split])) continue;
                string left = piece[..split], right = piece[split..];
                if (vocab.TryGetValue(left, out int l) && l >= 259 && vocab.TryGetValue(right, out int r) && r >= 259)
                    local.Add((left, right, scores[id]));
            }
            merges.AddRange(local.OrderBy(m => vocab[m.Item1]).ThenBy(m => vocab[m.Item2]));
        }
        var ranked = merges.Select((m, i) => (m, i)).OrderByDescending(x => x.m.Score).ThenBy(x => x.i).Select(x => x.m);

        var vocabJson = new JsonObject();
        foreach (var (id, piece) in byId.OrderBy(kv => kv.Key)) vocabJson[piece] = id;
        var model = json["model"]!.AsObject();
        model["vocab"] = vocabJson;
        model["merges"] = new JsonArray([.. ranked.Select(m => (JsonNode)new JsonArray(m.Left, m.Right))]);
        return json;
    }
}
