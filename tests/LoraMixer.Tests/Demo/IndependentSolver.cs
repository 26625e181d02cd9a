using System.Text.RegularExpressions;

namespace LoraMixer.Tests.Demo;

/// <summary>
/// Recognises and solves the demo tasks' inputs from their written specification, independently of the
/// library's generators (own regexes, own lexicon copy).
/// </summary>
public static partial class IndependentSolver
{
    private static readonly string[] Positive = ["good", "great", "happy", "nice", "fun", "kind", "warm", "love", "calm", "best"];
    private static readonly string[] Negative = ["bad", "sad", "awful", "poor", "dull", "cold", "rude", "hate", "ugly", "worst"];

    [GeneratedRegex(@"^(\d{1,2})\+(\d{1,2})$")] private static partial Regex AddInput();
    [GeneratedRegex(@"^[a-z]( [a-z]){2,3}$")] private static partial Regex ReverseInput();
    [GeneratedRegex(@"^\d( \d){2,3}$")] private static partial Regex SortInput();
    [GeneratedRegex(@"^([a-z]=\d )+\? [a-z]$")] private static partial Regex LookupInput();
    [GeneratedRegex(@"^[a-z]+( [a-z]+){2,4}$")] private static partial Regex WordsInput();

    /// <summary>The input inside a prompt "Q: &lt;input&gt;\nA:".</summary>
    public static string InputOf(string prompt)
    {
        Assert.StartsWith("Q: ", prompt);
        Assert.EndsWith("\nA:", prompt);
        return prompt[3..^3];
    }

    /// <summary>Every (task, answer) whose input format <paramref name="input"/> matches.</summary>
    public static List<(string Task, string Answer)> Solve(string input)
    {
        var result = new List<(string, string)>();
        if (AddInput().Match(input) is { Success: true } add)
            result.Add(("add", (int.Parse(add.Groups[1].Value) + int.Parse(add.Groups[2].Value)).ToString()));
        if (ReverseInput().IsMatch(input))
            result.Add(("reverse", new string(input.Reverse().ToArray())));
        if (SortInput().IsMatch(input))
            result.Add(("sort", string.Join(' ', input.Split(' ').OrderBy(d => d, StringComparer.Ordinal))));
        if (LookupInput().IsMatch(input))
        {
            string[] parts = input.Split(' ');
            string key = parts[^1];
            var pairs = parts[..^2].Select(p => p.Split('=')).ToArray();
            // A well-formed lookup has distinct keys and asks for one of them.
            if (pairs.Select(kv => kv[0]).Distinct().Count() == pairs.Length && pairs.FirstOrDefault(kv => kv[0] == key) is { } hit)
                result.Add(("lookup", hit[1]));
        }
        if (WordsInput().IsMatch(input) && !ReverseInput().IsMatch(input))
        {
            string[] words = input.Split(' ');
            int score = words.Count(Positive.Contains) - words.Count(Negative.Contains);
            if (score != 0) result.Add(("sentiment", score > 0 ? "pos" : "neg"));
        }
        return result;
    }
}
