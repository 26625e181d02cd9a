using LoraMixer.Demo;

namespace LoraMixer.Tests.Demo;

public sealed class DemoSuiteTests
{
    public static TheoryData<string> TaskNames() => [.. DemoSuite.Tasks.Select(t => t.Name)];

    [Fact]
    public void Suite_has_at_least_five_distinct_described_tasks()
    {
        Assert.True(DemoSuite.Tasks.Count >= 5);
        Assert.Equal(DemoSuite.Tasks.Count, DemoSuite.Tasks.Select(t => t.Name).Distinct().Count());
        Assert.All(DemoSuite.Tasks, t => Assert.False(string.IsNullOrWhiteSpace(t.Description)));
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Every_generated_answer_is_what_an_independent_solver_computes_and_only_this_task_matches(string task)
    {
        var items = DemoSuite.Generate(task, 500, seed: 11);
        Assert.Equal(500, items.Count);
        foreach (var item in items)
        {
            Assert.Equal(task, item.Task);
            var solutions = IndependentSolver.Solve(IndependentSolver.InputOf(item.Prompt));
            // Exactly one task's format fits, so the task is inferable from the input alone.
            var (solvedTask, answer) = Assert.Single(solutions);
            Assert.Equal(task, solvedTask);
            Assert.Equal(answer, item.Answer);
            Assert.InRange(item.Answer.Length, 1, 12);
            Assert.Equal($" {item.Answer}\n", item.Response);
        }
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Generation_is_deterministic_distinct_and_seed_dependent(string task)
    {
        var a = DemoSuite.Generate(task, 200, seed: 4);
        var b = DemoSuite.Generate(task, 200, seed: 4);
        var c = DemoSuite.Generate(task, 200, seed: 5);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Select(i => i.Prompt), c.Select(i => i.Prompt));
        Assert.Equal(a.Count, a.Select(i => i.Prompt).Distinct().Count());
    }

    [Fact]
    public void Tasks_with_the_same_seed_do_not_produce_parallel_streams()
    {
        var add = DemoSuite.Generate("add", 50, seed: 0).Select(i => i.Prompt).ToArray();
        var sort = DemoSuite.Generate("sort", 50, seed: 0).Select(i => i.Prompt).ToArray();
        Assert.NotEqual(add, sort);
        Assert.Empty(add.Intersect(sort));
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Train_and_test_splits_are_disjoint_and_sized_as_asked(string task)
    {
        var (train, test) = DemoSuite.GenerateSplit(task, 1000, 200, seed: 7);
        Assert.Equal(1000, train.Count);
        Assert.Equal(200, test.Count);
        Assert.Empty(train.Select(i => i.Prompt).Intersect(test.Select(i => i.Prompt)));
        Assert.Equal(DemoSuite.GenerateSplit(task, 1000, 200, seed: 7).Test, test);
    }

    [Fact]
    public void Prompt_format_is_shared_by_every_task()
    {
        foreach (var task in DemoSuite.Tasks)
        {
            var item = DemoSuite.Generate(task.Name, 1, 0)[0];
            Assert.Matches(@"^Q: [^\n]+\nA:$", item.Prompt);
        }
    }

    [Fact]
    public void IsCorrect_compares_the_trimmed_first_line_exactly()
    {
        var item = new DemoItem("add", "Q: 37+45\nA:", "82");
        Assert.True(DemoSuite.IsCorrect(item, " 82\nQ: 1+1\nA: 2"));
        Assert.True(DemoSuite.IsCorrect(item, "82"));
        Assert.True(DemoSuite.IsCorrect(item, "  82  \n"));
        Assert.False(DemoSuite.IsCorrect(item, " 820\n"));
        Assert.False(DemoSuite.IsCorrect(item, " 8"));
        Assert.False(DemoSuite.IsCorrect(item, "\n82"));
        Assert.False(DemoSuite.IsCorrect(item, ""));
    }

    [Fact]
    public void ToRecord_is_a_prompt_response_record_with_the_task()
    {
        var item = new DemoItem("sort", "Q: 3 1 2 0\nA:", "0 1 2 3");
        var record = DemoSuite.ToRecord(item);
        Assert.Equal("Q: 3 1 2 0\nA:", record.Prompt);
        Assert.Equal(" 0 1 2 3\n", record.Response);
        Assert.Null(record.Text);
        Assert.Equal("sort", record.Task);
    }

    [Fact]
    public void Unknown_task_lists_the_tasks()
    {
        var e = Assert.Throws<ArgumentException>(() => DemoSuite.Generate("mul", 1, 0));
        Assert.Contains("add, reverse, sort, lookup, sentiment", e.Message);
    }
}
