using System.Text;
using System.Text.Json;

namespace LoraMixer.Tokenization;

/// <summary>
/// A tokenizer.json "decoder" reduced to byte-producing steps per token plus the few rules that depend on the
/// position in the sequence, so that decoding can run one token at a time (see <see cref="StreamingDecoder"/>).
/// </summary>
internal sealed class HfDecoder
{
    private abstract record Step;
    private sealed record ReplaceStep(string? Literal, CodePointRegex? Regex, string Content) : Step;
    private sealed record MetaspaceStep(string Replacement, bool StripFirst) : Step;
    private sealed record ByteFallbackStep : Step;
    private sealed record ByteLevelStep : Step;
    private sealed record StripStep(string Content, int Start, int Stop) : Step;

    private readonly List<Step> _steps = [];
    // tokenizers joins tokens with spaces when a file has no decoder at all.
    private bool _joinWithSpaces;
    // A Strip after Fuse acts on the whole text: only its start is affected, by up to this many bytes.
    private byte _leadingStripByte;
    private int _leadingStripCount;

    private HfDecoder() { }

    /// <summary>Builds the decoder from the "decoder" element (JSON null: tokens joined by spaces).</summary>
    public static HfDecoder Create(JsonElement e, HfJson file)
    {
        var decoder = new HfDecoder();
        if (HfJson.IsNull(e)) decoder._joinWithSpaces = true;
        else decoder.Add(e, file, fused: false);
        return decoder;
    }

    private bool Add(JsonElement e, HfJson file, bool fused)
    {
        string type = file.RequiredType(e, "decoder");
        switch (type)
        {
            case "Sequence":
                foreach (var item in file.Array(e, "decoders", "Sequence decoder").EnumerateArray()) fused = Add(item, file, fused);
                return fused;
            case "Replace":
                var (literal, regex) = file.Pattern(e, "Replace decoder");
                _steps.Add(new ReplaceStep(literal, regex, file.String(e, "content", "Replace decoder")));
                return fused;
            case "Metaspace":
                string scheme = HfJson.OptionalString(e, "prepend_scheme") ?? (HfJson.Bool(e, "add_prefix_space", true) ? "always" : "never");
                _steps.Add(new MetaspaceStep(HfJson.OptionalString(e, "replacement") ?? "\u2581", scheme != "never"));
                return fused;
            case "ByteFallback":
                _steps.Add(new ByteFallbackStep());
                return fused;
            case "ByteLevel":
                _steps.Add(new ByteLevelStep());
                return true;
            case "Fuse":
                return true;
            case "Strip":
                string content = file.String(e, "content", "Strip decoder");
                int start = file.Int(e, "start", "Strip decoder"), stop = file.Int(e, "stop", "Strip decoder");
                if (!fused)
                {
                    _steps.Add(new StripStep(content, start, stop));
                }
                else
                {
                    if (stop != 0 || content.Length != 1 || content[0] > 0x7F || _leadingStripCount > 0)
                        throw file.Unsupported($"Strip decoder (content \"{content}\", stop {stop}) after Fuse");
                    _leadingStripByte = (byte)content[0];
                    _leadingStripCount = start;
                }
                return fused;
            default:
                throw file.Unsupported($"decoder type \"{type}\"");
        }
    }

    /// <summary>Creates the per-sequence writer; <paramref name="tokenText"/> gives each id's string or null to skip it.</summary>
    public TokenByteWriter CreateWriter(Func<int, string?> tokenText) => new Writer(this, tokenText);

    private sealed class Writer(HfDecoder decoder, Func<int, string?> tokenText) : TokenByteWriter
    {
        private int _tokenIndex;
        private bool _emitted;
        private int _leadingStripLeft = decoder._leadingStripCount;

        public override void Append(int id, List<byte> output)
        {
            string? s = tokenText(id);
            if (s is null) return;
            byte[]? bytes = null;
            foreach (var step in decoder._steps)
            {
                if (bytes is not null) break;
                switch (step)
                {
                    case ReplaceStep r:
                        s = r.Literal is not null ? (r.Literal.Length == 0 ? s : s.Replace(r.Literal, r.Content, StringComparison.Ordinal)) : ReplaceRegex(s, r.Regex!, r.Content);
                        break;
                    case MetaspaceStep m:
                        s = s.Replace(m.Replacement, " ", StringComparison.Ordinal);
                        if (m.StripFirst && _tokenIndex == 0 && s.StartsWith(' ')) s = s[1..];
                        break;
                    case ByteFallbackStep when SentencePieceTokenizer.TryParseBytePiece(s, out byte b):
                        bytes = [b];
                        break;
                    case ByteLevelStep:
                        bytes = FromByteAlphabet(s);
                        break;
                    case StripStep strip:
                        s = StripToken(s, strip);
                        break;
                }
            }
            bytes ??= Encoding.UTF8.GetBytes(s);
            if (decoder._joinWithSpaces && _tokenIndex > 0) Emit((byte)' ', output);
            foreach (byte b in bytes) Emit(b, output);
            _tokenIndex++;
        }

        private void Emit(byte b, List<byte> output)
        {
            if (!_emitted && _leadingStripLeft > 0 && b == decoder._leadingStripByte)
            {
                _leadingStripLeft--;
                return;
            }
            _emitted = true;
            output.Add(b);
        }

        // tokenizers falls back to the token's own UTF-8 when a character is outside the byte alphabet.
        private static byte[] FromByteAlphabet(string s)
        {
            var bytes = new byte[s.Length];
            for (int i = 0; i < s.Length; i++)
            {
                if (!ByteLevelAlphabet.CharToByte.TryGetValue(s[i], out bytes[i])) return Encoding.UTF8.GetBytes(s);
            }
            return bytes;
        }

        private static string ReplaceRegex(string s, CodePointRegex regex, string content)
        {
            var sb = new StringBuilder(s.Length);
            int last = 0;
            foreach (var (start, end) in regex.Matches(s))
            {
                sb.Append(s, last, start - last).Append(content);
                last = end;
            }
            return sb.Append(s, last, s.Length - last).ToString();
        }

        private static string StripToken(string s, StripStep strip)
        {
            int start = 0, end = s.Length;
            for (int i = 0; i < strip.Start && s.AsSpan(start, end - start).StartsWith(strip.Content, StringComparison.Ordinal); i++) start += strip.Content.Length;
            for (int i = 0; i < strip.Stop && end - start >= strip.Content.Length && s.AsSpan(start, end - start).EndsWith(strip.Content, StringComparison.Ordinal); i++) end -= strip.Content.Length;
            return s[start..end];
        }
    }
}
