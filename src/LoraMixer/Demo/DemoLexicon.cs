namespace LoraMixer.Demo;

/// <summary>The small word lists of the sentiment task, shared with the pretraining corpus (which never labels them).</summary>
internal static class DemoLexicon
{
    public static readonly string[] Positive = ["good", "great", "happy", "nice", "fun", "kind", "warm", "love", "calm", "best"];
    public static readonly string[] Negative = ["bad", "sad", "awful", "poor", "dull", "cold", "rude", "hate", "ugly", "worst"];
    public static readonly string[] Neutral = ["the", "a", "day", "food", "cat", "room", "film", "it", "was", "very", "and", "our", "tea", "park"];
    public static readonly string[] All = [.. Positive, .. Negative, .. Neutral];
}
