using LoraMixer.Errors;
using LoraMixer.Evaluation;

namespace LoraMixer.Tests.Evaluation;

public sealed class EvalDataLocatorTests
{
    [Fact]
    public void The_data_dir_flag_wins_over_the_environment_variable()
    {
        string flag = TestPaths.NewTempDir(), env = TestPaths.NewTempDir();
        var locator = EvalDataLocator.Resolve(flag, name => name == "LORAMIXER_DATA" ? env : null);
        Assert.Equal(Path.GetFullPath(flag), locator.Root);
        Assert.Equal(Path.Combine(locator.Root, "gsm8k", "test.jsonl"), locator.PathFor(EvalTask.Gsm8k));
    }

    [Fact]
    public void Without_a_flag_the_environment_variable_is_used()
    {
        string env = TestPaths.NewTempDir();
        Assert.Equal(Path.GetFullPath(env), EvalDataLocator.Resolve(null, name => name == "LORAMIXER_DATA" ? env : null).Root);
    }

    [Fact]
    public void Neither_flag_nor_variable_is_an_error_naming_both()
    {
        var error = Assert.Throws<DataFormatException>(() => EvalDataLocator.Resolve(null, _ => null));
        Assert.Contains("--data-dir", error.Message);
        Assert.Contains("LORAMIXER_DATA", error.Message);
    }

    [Fact]
    public void The_train_split_is_offered_only_when_present()
    {
        string dir = TestPaths.NewTempDir();
        var locator = new EvalDataLocator(dir);
        Assert.Null(locator.TrainPathFor(EvalTask.Gsm8k));
        EvalTestData.Write(dir, "gsm8k/train.jsonl", "{}");
        Assert.Equal(Path.Combine(dir, "gsm8k", "train.jsonl"), locator.TrainPathFor(EvalTask.Gsm8k));
        Assert.Null(locator.TrainPathFor(EvalTask.HumanEval));
    }
}
