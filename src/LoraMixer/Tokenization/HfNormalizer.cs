using System.Text;
using System.Text.Json;

namespace LoraMixer.Tokenization;

/// <summary>A Hugging Face tokenizers normalizer, applied to each text segment between added tokens.</summary>
internal abstract class HfNormalizer
{
    public abstract string Normalize(string text);

    /// <summary>Builds the normalizer described by <paramref name="e"/>, or null for JSON null.</summary>
    public static HfNormalizer? Create(JsonElement e, HfJson file)
    {
        if (HfJson.IsNull(e)) return null;
        string type = file.RequiredType(e, "normalizer");
        switch (type)
        {
            case "Sequence":
                var parts = new List<HfNormalizer>();
                foreach (var item in file.Array(e, "normalizers", "Sequence normalizer").EnumerateArray())
                    if (Create(item, file) is { } n) parts.Add(n);
                return new Sequence(parts);
            case "Prepend":
                return new Prepend(file.String(e, "prepend", "Prepend normalizer"));
            case "Replace":
                var (literal, regex) = file.Pattern(e, "Replace normalizer");
                return new Replace(literal, regex, file.String(e, "content", "Replace normalizer"));
            case "NFC": return new Unicode(NormalizationForm.FormC);
            case "NFD": return new Unicode(NormalizationForm.FormD);
            case "NFKC": return new Unicode(NormalizationForm.FormKC);
            case "NFKD": return new Unicode(NormalizationForm.FormKD);
            case "Lowercase": return new Lowercase();
            case "Strip":
                return new Strip(HfJson.Bool(e, "strip_left", true), HfJson.Bool(e, "strip_right", true));
            default:
                throw file.Unsupported($"normalizer type \"{type}\"");
        }
    }

    private sealed class Sequence(List<HfNormalizer> parts) : HfNormalizer
    {
        public override string Normalize(string text)
        {
            foreach (var part in parts) text = part.Normalize(text);
            return text;
        }
    }

    // tokenizers prepends only to non-empty text.
    private sealed class Prepend(string prefix) : HfNormalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class Replace(string? literal, CodePointRegex? regex, string content) : HfNormalizer
    {
        public override string Normalize(string text) =>
            literal is not null ? (literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal)) : ReplaceMatches(text);

        private string ReplaceMatches(string text)
        {
            var sb = new StringBuilder(text.Length);
            int last = 0;
            foreach (var (start, end) in regex!.Matches(text))
            {
                sb.Append(text, last, start - last).Append(content);
                last = end;
            }
            return sb.Append(text, last, text.Length - last).ToString();
        }
    }

    // With InvariantGlobalization the runtime leaves non-ASCII text unnormalized; most text is NFC already.
    private sealed class Unicode(NormalizationForm form) : HfNormalizer
    {
        public override string Normalize(string text) => text.Normalize(form);
    }

    private sealed class Lowercase : HfNormalizer
    {
        public override string Normalize(string text) => text.ToLowerInvariant();
    }

    private sealed class Strip(bool left, bool right) : HfNormalizer
    {
        public override string Normalize(string text) => left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
    }
}
