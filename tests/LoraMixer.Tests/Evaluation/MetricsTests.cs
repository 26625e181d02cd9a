using System.Numerics;
using LoraMixer.Evaluation;

namespace LoraMixer.Tests.Evaluation;

public sealed class MetricsTests
{
    [Fact]
    public void Mcc_of_a_hand_worked_confusion_matrix_is_one_third()
    {
        // TP 2, FP 1, TN 2, FN 1: (2·2 − 1·1) / √(3·3·3·3) = 3/9.
        int[] predicted = { 1, 1, 0, 0, 1, 0 }, gold = { 1, 0, 0, 1, 1, 0 };
        Assert.Equal(1.0 / 3.0, ClassificationMetrics.MatthewsCorrelation(predicted, gold), 12);
        Assert.Equal(4.0 / 6.0, ClassificationMetrics.Accuracy(predicted, gold), 12);
    }

    [Fact]
    public void Mcc_is_one_for_perfect_minus_one_for_inverted_and_zero_when_undefined()
    {
        int[] gold = { 1, 0, 1, 0 };
        Assert.Equal(1.0, ClassificationMetrics.MatthewsCorrelation(gold, gold), 12);
        Assert.Equal(-1.0, ClassificationMetrics.MatthewsCorrelation(new[] { 0, 1, 0, 1 }, gold), 12);
        Assert.Equal(0.0, ClassificationMetrics.MatthewsCorrelation(new[] { 1, 1, 1, 1 }, gold));
    }

    [Theory]
    [InlineData(5, 1, 1, 0.2)]
    [InlineData(10, 3, 5, 1 - 21.0 / 252.0)] // 1 − C(7,5)/C(10,5)
    [InlineData(4, 2, 3, 1.0)]               // n − c < k
    [InlineData(20, 0, 5, 0.0)]
    [InlineData(1, 1, 1, 1.0)]
    public void Pass_at_k_matches_hand_worked_values(int n, int c, int k, double expected) =>
        Assert.Equal(expected, PassAtK.Estimate(n, c, k), 12);

    [Fact]
    public void Pass_at_k_product_form_equals_exact_binomials_for_large_n()
    {
        static BigInteger Choose(int n, int k)
        {
            BigInteger r = 1;
            for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
            return r;
        }
        var ratio = (double)(Choose(163, 10) * 1_000_000_000_000 / Choose(200, 10)) / 1e12; // C(200−37, 10)/C(200, 10)
        Assert.Equal(1 - ratio, PassAtK.Estimate(200, 37, 10), 10);
    }

    [Theory]
    [InlineData("so the total is #### 1,000", "1000")]
    [InlineData("#### 5\nlater #### 6", "5")]
    [InlineData("#### -3", "-3")]
    [InlineData("The answer is 7.", "[invalid]")]
    [InlineData("#### $5", "[invalid]")]
    public void Strict_match_takes_the_first_number_after_four_hashes(string text, string expected)
    {
        string extracted = Gsm8kAnswer.ExtractStrict(text);
        Assert.Equal(expected, extracted == Gsm8kAnswer.Invalid ? extracted : Gsm8kAnswer.Normalize(extracted));
    }

    [Theory]
    [InlineData("The answer is 7.", "7")]
    [InlineData("It costs $5.50", "5.50")]
    [InlineData("She owes -3 dollars", "-3")]
    [InlineData("He had 3 apples, then 1,000.", "1000")]
    [InlineData("#### 12", "12")]
    [InlineData("no digits here", "[invalid]")]
    public void Flexible_extract_takes_the_last_number(string text, string expected)
    {
        string extracted = Gsm8kAnswer.ExtractFlexible(text);
        Assert.Equal(expected, extracted == Gsm8kAnswer.Invalid ? extracted : Gsm8kAnswer.Normalize(extracted));
    }

    [Fact]
    public void Matching_normalises_both_sides_as_lm_eval_and_compares_strings()
    {
        Assert.True(Gsm8kAnswer.IsMatch("1,000", "Janet makes 1000\n#### 1000"));
        Assert.True(Gsm8kAnswer.IsMatch("$5.50", "5.50"));
        Assert.False(Gsm8kAnswer.IsMatch("5.50", "5.5"));
        Assert.True(Gsm8kAnswer.IsMatch("7.", "7"));
        Assert.False(Gsm8kAnswer.IsMatch(Gsm8kAnswer.Invalid, "[invalid]"));
    }

    [Fact]
    public void Bootstrap_is_deterministic_brackets_the_mean_and_collapses_on_constant_scores()
    {
        var scores = Enumerable.Range(0, 200).Select(i => i % 4 == 0 ? 1.0 : 0.0).ToArray(); // mean 0.25
        var first = Bootstrap.Mean(scores, 1000, seed: 7);
        Assert.Equal(first, Bootstrap.Mean(scores, 1000, seed: 7));
        Assert.True(first.Lower < 0.25 && 0.25 < first.Upper);
        // Binomial standard error √(0.25·0.75/200) ≈ 0.0306, so the 95% half-width is about 0.06.
        Assert.InRange(first.Upper - first.Lower, 0.09, 0.15);
        Assert.Equal(new ConfidenceInterval(1, 1), Bootstrap.Mean(Enumerable.Repeat(1.0, 50).ToArray()));
    }

    [Fact]
    public void Bootstrap_of_mcc_resamples_pairs_together()
    {
        var pairs = Enumerable.Range(0, 60).Select(i => (P: i % 2, G: i % 2)).ToArray(); // perfect agreement
        var ci = Bootstrap.Percentile(pairs, s => ClassificationMetrics.MatthewsCorrelation(s.Select(p => p.P).ToArray(), s.Select(p => p.G).ToArray()));
        Assert.Equal(new ConfidenceInterval(1, 1), ci);
    }

    [Fact]
    public void Limit_selects_a_deterministic_sorted_subset()
    {
        var a = EvalSubset.Select(100, 10, seed: 3);
        Assert.Equal(a, EvalSubset.Select(100, 10, seed: 3));
        Assert.Equal(10, a.Distinct().Count());
        Assert.Equal(a.Order(), a);
        Assert.NotEqual(a, EvalSubset.Select(100, 10, seed: 4));
        Assert.Equal(Enumerable.Range(0, 5), EvalSubset.Select(5, 10, seed: 3));
    }

    [Fact]
    public void Few_shot_draw_never_includes_the_excluded_example()
    {
        for (int i = 0; i < 20; i++)
        {
            var shots = EvalSubset.FewShot(6, 5, seed: 1, exampleIndex: i, exclude: i % 6);
            Assert.DoesNotContain(i % 6, shots);
            Assert.Equal(5, shots.Distinct().Count());
        }
    }
}
