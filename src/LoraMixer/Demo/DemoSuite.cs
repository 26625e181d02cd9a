using LoraMixer.Data;

namespace LoraMixer.Demo;

/// <summary>
/// The built-in multi-task suite the demo trains one expert per task on. Every task uses the same format,
/// prompt "Q: &lt;input&gt;\nA:" and response " &lt;answer&gt;\n", and no task marker: the task shows only in the
/// input's content (digits or letters, '+' or '=' or words), so a router has to read the input. Inputs overlap in
/// form on purpose: add and sort are both digits, reverse and sort both spaced single characters, lookup and
/// sentiment both lowercase words. Answers are at most 11 characters.
/// </summary>
public static class DemoSuite
{
    private delegate (string Input, string Answer) Generator(Random random);

    private static readonly (DemoTask Task, Generator Generate)[] Definitions =
    [
        (new DemoTask("add", "Sum of two numbers 0-99: \"37+45\" -> \"82\"."), Add),
        (new DemoTask("reverse", "3-4 spaced lowercase letters in reverse order (never a palindrome): \"k q z m\" -> \"m z q k\"."), Reverse),
        (new DemoTask("sort", "3-4 distinct spaced digits in ascending order (never already sorted): \"3 9 1\" -> \"1 3 9\"."), Sort),
        (new DemoTask("lookup", "Value of the queried key in 3-4 key=value pairs: \"b=4 k=7 x=2 ? k\" -> \"7\"."), Lookup),
        (new DemoTask("sentiment", "Majority polarity of 3-5 words from a small lexicon: \"the food was awful\" -> \"neg\"."), Sentiment),
    ];

    /// <summary>The tasks, in expert order.</summary>
    public static IReadOnlyList<DemoTask> Tasks { get; } = [.. Definitions.Select(d => d.Task)];

    /// <summary>The prompt for an input: "Q: &lt;input&gt;\nA:".</summary>
    public static string FormatPrompt(string input) => $"Q: {input}\nA:";

    /// <summary>The response for an answer: " &lt;answer&gt;\n" (the encoder adds EOS after it).</summary>
    public static string FormatResponse(string answer) => $" {answer}\n";

    /// <summary><paramref name="count"/> distinct items of <paramref name="task"/>, the same for the same seed.</summary>
    /// <exception cref="ArgumentException">The task is unknown, or has fewer distinct items than asked for.</exception>
    public static IReadOnlyList<DemoItem> Generate(string task, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int index = Array.FindIndex(Definitions, d => d.Task.Name == task);
        if (index < 0)
            throw new ArgumentException($"Unknown demo task \"{task}\"; the tasks are {string.Join(", ", Tasks.Select(t => t.Name))}.", nameof(task));
        var generate = Definitions[index].Generate;
        var random = new Random(unchecked(seed * 1_000_003 + 7_919 * (index + 1)));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var items = new List<DemoItem>(count);
        long misses = 0, maxMisses = 1000 + 100L * count;
        while (items.Count < count)
        {
            var (input, answer) = generate(random);
            string prompt = FormatPrompt(input);
            if (seen.Add(prompt))
            {
                items.Add(new DemoItem(task, prompt, answer));
            }
            else if (++misses > maxMisses)
            {
                throw new ArgumentException($"Demo task \"{task}\" ran out of distinct items after {items.Count}; ask for fewer.", nameof(count));
            }
        }
        return items;
    }

    /// <summary>
    /// Disjoint train and test items of <paramref name="task"/>: the first <paramref name="trainCount"/> and the
    /// next <paramref name="testCount"/> of <see cref="Generate"/>'s distinct items.
    /// </summary>
    public static (IReadOnlyList<DemoItem> Train, IReadOnlyList<DemoItem> Test) GenerateSplit(string task, int trainCount, int testCount, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainCount);
        ArgumentOutOfRangeException.ThrowIfNegative(testCount);
        var all = Generate(task, trainCount + testCount, seed);
        return ([.. all.Take(trainCount)], [.. all.Skip(trainCount)]);
    }

    /// <summary>Whether the first line of <paramref name="generated"/> (the text after the prompt), trimmed, is the answer.</summary>
    public static bool IsCorrect(DemoItem item, string generated)
    {
        ArgumentNullException.ThrowIfNull(item);
        ArgumentNullException.ThrowIfNull(generated);
        int newline = generated.IndexOf('\n');
        string firstLine = newline >= 0 ? generated[..newline] : generated;
        return string.Equals(firstLine.Trim(), item.Answer, StringComparison.Ordinal);
    }

    /// <summary>The item as a prompt/response training record labelled with its task.</summary>
    public static TrainingRecord ToRecord(DemoItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        return new TrainingRecord(item.Prompt, item.Response, null, item.Task, $"demo suite ({item.Task})", 0);
    }

    private static (string, string) Add(Random random)
    {
        int a = random.Next(100), b = random.Next(100);
        return ($"{a}+{b}", (a + b).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static (string, string) Reverse(Random random)
    {
        while (true)
        {
            var letters = new char[random.Next(3, 5)];
            for (int i = 0; i < letters.Length; i++) letters[i] = (char)('a' + random.Next(26));
            var reversed = letters.Reverse().ToArray();
            // A palindrome would be solvable by copying, which pretraining teaches.
            if (letters.SequenceEqual(reversed)) continue;
            return (string.Join(' ', letters), string.Join(' ', reversed));
        }
    }

    private static (string, string) Sort(Random random)
    {
        while (true)
        {
            var digits = Enumerable.Range(0, 10).ToArray();
            random.Shuffle(digits);
            var chosen = digits[..random.Next(3, 5)];
            var sorted = chosen.Order().ToArray();
            if (chosen.SequenceEqual(sorted)) continue;
            return (string.Join(' ', chosen), string.Join(' ', sorted));
        }
    }

    private static (string, string) Lookup(Random random)
    {
        var keys = Enumerable.Range(0, 26).Select(i => (char)('a' + i)).ToArray();
        random.Shuffle(keys);
        int pairs = random.Next(3, 5);
        var values = new int[pairs];
        for (int i = 0; i < pairs; i++) values[i] = random.Next(10);
        int query = random.Next(pairs);
        string list = string.Join(' ', Enumerable.Range(0, pairs).Select(i => $"{keys[i]}={values[i]}"));
        return ($"{list} ? {keys[query]}", values[query].ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static (string, string) Sentiment(Random random)
    {
        bool positive = random.Next(2) == 0;
        int words = random.Next(3, 6);
        // One to three polar words; with three, one may take the other side, so counting (not spotting) decides.
        int polar = random.Next(1, Math.Min(3, words) + 1);
        int minority = polar == 3 ? random.Next(2) : 0;
        var (major, minor) = positive ? (DemoLexicon.Positive, DemoLexicon.Negative) : (DemoLexicon.Negative, DemoLexicon.Positive);
        var chosen = new List<string>(words);
        for (int i = 0; i < polar - minority; i++) chosen.Add(major[random.Next(major.Length)]);
        for (int i = 0; i < minority; i++) chosen.Add(minor[random.Next(minor.Length)]);
        while (chosen.Count < words) chosen.Add(DemoLexicon.Neutral[random.Next(DemoLexicon.Neutral.Length)]);
        var order = chosen.ToArray();
        random.Shuffle(order);
        return (string.Join(' ', order), positive ? "pos" : "neg");
    }
}
