using System.Text;

namespace LoraMixer.Demo;

/// <summary>
/// Short generic documents (at most <see cref="MaxDocumentLength"/> characters) that pretrain the demo's tiny
/// character model: the character set, the "Q: ...\nA: ..." line format and copying, counting, lexicon words in
/// unlabelled sentences and key=value lists. It never contains a task's answer: its Q/A lines only copy the
/// question, and questions whose copy would answer a task (a palindrome, already sorted digits) are left out.
/// </summary>
public static class PretrainingCorpus
{
    /// <summary>Longest document, in characters.</summary>
    public const int MaxDocumentLength = 64;

    private const string Letters = "abcdefghijklmnopqrstuvwxyz";
    // Printable ASCII without '<' and '>' (which could spell a special token such as "</s>") and without '+'
    // and '=' (which belong to the add and lookup tasks' inputs, written below in their own documents).
    private static readonly string RandomChars = new([.. Enumerable.Range('!', '~' - '!' + 1).Select(c => (char)c).Where(c => c is not ('<' or '>' or '+' or '='))]);

    private delegate string DocumentGenerator(Random random);

    private static readonly DocumentGenerator[] Kinds = [CopyOne, CopyTwo, Counting, Sentence, KeyValues, Expressions];

    /// <summary><paramref name="documents"/> documents, the same for the same seed.</summary>
    public static IReadOnlyList<string> Generate(int documents, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(documents);
        var random = new Random(unchecked(seed * 1_000_003 + 424_242));
        var result = new List<string>(documents);
        while (result.Count < documents)
        {
            string doc = Kinds[random.Next(Kinds.Length)](random);
            if (doc.Length <= MaxDocumentLength) result.Add(doc);
        }
        return result;
    }

    private static string CopyLine(string s) => $"Q: {s}\nA: {s}\n";

    private static string CopyOne(Random random) => CopyLine(CopySubject(random, 26));

    private static string CopyTwo(Random random) => CopyLine(CopySubject(random, 10)) + CopyLine(CopySubject(random, 10));

    /// <summary>A string to copy, shaped like the tasks' inputs or random, whose copy answers no task.</summary>
    private static string CopySubject(Random random, int maxLength)
    {
        while (true)
        {
            string s = random.Next(6) switch
            {
                0 => SpacedLetters(random, random.Next(3, 7)),
                1 => SpacedDigits(random, random.Next(3, 7)),
                2 => $"{random.Next(100)}+{random.Next(100)}",
                3 => $"{KeyValueList(random, random.Next(2, 5))} ? {Letters[random.Next(26)]}",
                4 => Words(random, random.Next(2, 6)),
                _ => RandomString(random, random.Next(1, maxLength + 1)),
            };
            if (s.Length <= maxLength && !CopyAnswersATask(s)) return s;
        }
    }

    // Copying a palindrome reverses it and copying ascending digits sorts them: leave such questions out.
    private static bool CopyAnswersATask(string s)
    {
        string[] parts = s.Split(' ');
        if (parts.Length > 1 && parts.All(p => p.Length == 1 && char.IsAsciiLetterLower(p[0])) && parts.SequenceEqual(parts.Reverse()))
            return true;
        if (parts.Length > 1 && parts.All(p => p.Length == 1 && char.IsAsciiDigit(p[0])))
            return parts.Zip(parts.Skip(1)).All(pair => string.CompareOrdinal(pair.First, pair.Second) <= 0);
        return false;
    }

    private static string Counting(Random random)
    {
        int count = random.Next(4, 10);
        switch (random.Next(3))
        {
            case 0:
                int start = random.Next(0, 10 - Math.Min(count, 9));
                return string.Join(' ', Enumerable.Range(start, Math.Min(count, 10 - start)));
            case 1:
                int first = random.Next(0, 26 - count);
                return string.Join(' ', Letters.Substring(first, count).ToCharArray());
            default:
                int from = random.Next(0, 90);
                return string.Join(' ', Enumerable.Range(from, Math.Min(count, 7)));
        }
    }

    private static string Sentence(Random random)
    {
        var sb = new StringBuilder(Words(random, random.Next(3, 9)));
        if (random.Next(3) == 0) sb.Append('\n').Append(Words(random, random.Next(2, 6)));
        return sb.ToString();
    }

    private static string KeyValues(Random random) => KeyValueList(random, random.Next(2, 7));

    // Sums written without their results, so the model sees numbers and '+' but never an addition solved.
    private static string Expressions(Random random) =>
        string.Join(' ', Enumerable.Range(0, random.Next(1, 5)).Select(_ => $"{random.Next(100)}+{random.Next(100)}"));

    private static string SpacedLetters(Random random, int n) =>
        string.Join(' ', Enumerable.Range(0, n).Select(_ => Letters[random.Next(26)]));

    private static string SpacedDigits(Random random, int n) =>
        string.Join(' ', Enumerable.Range(0, n).Select(_ => (char)('0' + random.Next(10))));

    private static string KeyValueList(Random random, int pairs)
    {
        var keys = Letters.ToCharArray();
        random.Shuffle(keys);
        return string.Join(' ', Enumerable.Range(0, pairs).Select(i => $"{keys[i]}={random.Next(10)}"));
    }

    private static string Words(Random random, int n) =>
        string.Join(' ', Enumerable.Range(0, n).Select(_ => DemoLexicon.All[random.Next(DemoLexicon.All.Length)]));

    private static string RandomString(Random random, int n)
    {
        var chars = new char[n];
        for (int i = 0; i < n; i++) chars[i] = random.Next(8) == 0 ? ' ' : RandomChars[random.Next(RandomChars.Length)];
        return new string(chars).Trim() is { Length: > 0 } s ? s : "x";
    }
}
