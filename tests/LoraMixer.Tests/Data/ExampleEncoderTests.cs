using LoraMixer.Data;
using LoraMixer.Errors;

namespace LoraMixer.Tests.Data;

public sealed class ExampleEncoderTests
{
    // CharTokenizer: BOS 1, EOS 2, 'a' 10, 'b' 11, ...
    private static TrainingRecord Pair(string? prompt, string response, string? task = null, int line = 7) =>
        new(prompt, response, null, task, "train.jsonl", line);

    [Fact]
    public void Prompt_response_is_bos_prompt_response_eos_with_loss_on_response_and_eos_only()
    {
        var e = new ExampleEncoder(new CharTokenizer(), 64).Encode(Pair("ab", "cd"));
        Assert.Equal([1, 10, 11, 12, 13, 2], e.InputIds);
        Assert.Equal([false, false, false, true, true, true], e.LossMask);
        Assert.Equal(-1, e.TaskIndex);
        Assert.Equal(7, e.Line);
        Assert.Equal(3, e.TargetCount);
    }

    [Fact]
    public void Text_record_trains_on_every_token_after_bos_including_eos()
    {
        var e = new ExampleEncoder(new CharTokenizer(), 64).Encode(new TrainingRecord(null, null, "abc", null, "f", 1));
        Assert.Equal([1, 10, 11, 12, 2], e.InputIds);
        Assert.Equal([false, true, true, true, true], e.LossMask);
    }

    [Fact]
    public void Without_bos_the_first_token_is_never_a_target()
    {
        var encoder = new ExampleEncoder(new CharTokenizer(addsBos: false), 64);
        var text = encoder.Encode(new TrainingRecord(null, null, "abc", null, "f", 1));
        Assert.Equal([10, 11, 12, 2], text.InputIds);
        Assert.Equal([false, true, true, true], text.LossMask);
        var pair = encoder.Encode(Pair(null, "ab"));
        Assert.Equal([10, 11, 2], pair.InputIds);
        Assert.Equal([false, true, true], pair.LossMask);
    }

    [Fact]
    public void Tokenizer_without_eos_appends_nothing()
    {
        var e = new ExampleEncoder(new CharTokenizer(hasEos: false), 64).Encode(Pair("a", "b"));
        Assert.Equal([1, 10, 11], e.InputIds);
        Assert.Equal([false, false, true], e.LossMask);
    }

    [Fact]
    public void Truncation_keeps_the_beginning()
    {
        var e = new ExampleEncoder(new CharTokenizer(), 4).Encode(Pair("ab", "cdef"));
        Assert.Equal([1, 10, 11, 12], e.InputIds);
        Assert.Equal([false, false, false, true], e.LossMask);
    }

    [Fact]
    public void Prompt_filling_the_maximum_length_is_reported_with_its_line_or_skipped_by_TryEncode()
    {
        var encoder = new ExampleEncoder(new CharTokenizer(), 3);
        var record = Pair("ab", "cd", line: 12);
        var error = Assert.Throws<DataFormatException>(() => encoder.Encode(record));
        Assert.StartsWith("train.jsonl:12: the prompt is 3 tokens", error.Message);
        Assert.Contains("maximum length of 3", error.Message);
        Assert.False(encoder.TryEncode(record, out var skipped));
        Assert.Null(skipped);
        Assert.True(encoder.TryEncode(Pair("a", "cd"), out var kept));
        Assert.Equal([1, 10, 12], kept.InputIds);
    }

    [Fact]
    public void Task_names_map_to_indices_and_unknown_tasks_are_reported()
    {
        var encoder = new ExampleEncoder(new CharTokenizer(), 64, ["add", "sort"]);
        Assert.Equal(1, encoder.Encode(Pair("a", "b", "sort")).TaskIndex);
        Assert.Equal(0, encoder.Encode(Pair("a", "b", "add")).TaskIndex);
        Assert.Equal(-1, encoder.Encode(Pair("a", "b")).TaskIndex);
        var error = Assert.Throws<DataFormatException>(() => encoder.Encode(Pair("a", "b", "mul", line: 3)));
        Assert.Equal("train.jsonl:3: unknown task \"mul\"; known tasks: add, sort.", error.Message);
    }

    [Fact]
    public void Without_task_names_every_example_has_no_task()
    {
        Assert.Equal(-1, new ExampleEncoder(new CharTokenizer(), 64).Encode(Pair("a", "b", "add")).TaskIndex);
    }
}
