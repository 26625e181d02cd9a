using System.Text.RegularExpressions;
using LoraMixer.Demo;

namespace LoraMixer.Tests.Demo;

public sealed class PretrainingCorpusTests
{
    private static readonly IReadOnlyList<string> Corpus = PretrainingCorpus.Generate(5000, seed: 1);

    [Fact]
    public void Corpus_is_deterministic_and_seed_dependent()
    {
        Assert.Equal(Corpus.Take(300), PretrainingCorpus.Generate(300, seed: 1));
        Assert.NotEqual(Corpus.Take(300), PretrainingCorpus.Generate(300, seed: 2));
    }

    [Fact]
    public void Documents_are_short_and_use_only_the_demo_vocabulary()
    {
        var vocab = DemoTokenizer.Vocabulary.Where(t => t.Length == 1).Select(t => t[0]).ToHashSet();
        Assert.Equal(5000, Corpus.Count);
        Assert.All(Corpus, doc =>
        {
            Assert.InRange(doc.Length, 1, PretrainingCorpus.MaxDocumentLength);
            Assert.All(doc, c => Assert.Contains(c, vocab));
            Assert.DoesNotContain("<s>", doc);
            Assert.DoesNotContain("</s>", doc);
        });
    }

    [Fact]
    public void Corpus_covers_every_character_of_the_tasks_and_the_QA_format()
    {
        var seen = Corpus.SelectMany(d => d).ToHashSet();
        string needed = "abcdefghijklmnopqrstuvwxyz0123456789+=? \n:QA";
        Assert.All(needed, c => Assert.Contains(c, seen));
        Assert.Contains(Corpus, d => d.StartsWith("Q: ", StringComparison.Ordinal));
    }

    [Fact]
    public void Corpus_never_answers_a_task()
    {
        int pairs = 0;
        foreach (string doc in Corpus)
        {
            string[] lines = doc.Split('\n');
            Assert.DoesNotMatch(@"\d\+\d+\s*=", doc);
            for (int i = 0; i < lines.Length; i++)
            {
                if (!lines[i].StartsWith("A:", StringComparison.Ordinal)) continue;
                Assert.True(i > 0 && lines[i - 1].StartsWith("Q: ", StringComparison.Ordinal), $"answer line without question in {doc}");
                string question = lines[i - 1][3..];
                string answer = lines[i][2..].Trim();
                Assert.NotEqual("pos", answer);
                Assert.NotEqual("neg", answer);
                foreach (var (task, solution) in IndependentSolver.Solve(question))
                    Assert.False(solution == answer, $"corpus answers {task}: {Regex.Escape(doc)}");
                pairs++;
            }
        }
        Assert.True(pairs > 1000, $"only {pairs} Q/A copy lines");
    }

    [Fact]
    public void Copy_questions_include_inputs_shaped_like_each_task()
    {
        var questions = Corpus.SelectMany(d => d.Split('\n')).Where(l => l.StartsWith("Q: ", StringComparison.Ordinal)).Select(l => l[3..]).ToList();
        var shapes = questions.SelectMany(q => IndependentSolver.Solve(q).Select(s => s.Task)).ToHashSet();
        Assert.Contains("add", shapes);
        Assert.Contains("reverse", shapes);
        Assert.Contains("sort", shapes);
        Assert.Contains("lookup", shapes);
    }
}
