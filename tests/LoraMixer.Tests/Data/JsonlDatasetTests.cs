using LoraMixer.Data;
using LoraMixer.Errors;

namespace LoraMixer.Tests.Data;

public sealed class JsonlDatasetTests
{
    private static string WriteFile(string content)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "train.jsonl");
        File.WriteAllText(path, content);
        return path;
    }

    private static DataFormatException LoadFails(string content, bool requireTask = false, string[]? known = null)
    {
        string path = WriteFile(content);
        var e = Assert.Throws<DataFormatException>(() => JsonlDataset.Load(path, requireTask, known));
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void Loads_prompt_response_and_text_records_with_their_lines_skipping_blank_lines()
    {
        string path = WriteFile("{\"prompt\":\"Q: 1+1\\nA:\",\"response\":\" 2\\n\",\"task\":\"add\"}\n\n   \n{\"text\":\"hello\",\"id\":7}\r\n{\"response\":\"only\",\"prompt\":null}\n");
        var records = JsonlDataset.Load(path);
        Assert.Equal(3, records.Count);
        Assert.Equal(new TrainingRecord("Q: 1+1\nA:", " 2\n", null, "add", path, 1), records[0]);
        Assert.Equal(new TrainingRecord(null, null, "hello", null, path, 4), records[1]);
        Assert.Equal(new TrainingRecord(null, "only", null, null, path, 5), records[2]);
    }

    [Fact]
    public void Write_then_load_round_trips_records_including_special_characters()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "sub", "data.jsonl");
        var records = new[]
        {
            new TrainingRecord("Q: \"x\" <s> é\nA:", " 3+4\n", null, "add"),
            new TrainingRecord(null, null, "line one\nline two\ttab", "text-task"),
        };
        JsonlDataset.Write(path, records);
        var loaded = JsonlDataset.Load(path);
        Assert.Equal(2, File.ReadAllLines(path).Length);
        Assert.Equal(records[0] with { Source = path, Line = 1 }, loaded[0]);
        Assert.Equal(records[1] with { Source = path, Line = 2 }, loaded[1]);
        Assert.Contains("3+4", File.ReadAllText(path)); // readable, not \u002B-escaped
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
    }

    [Fact]
    public void Missing_file_names_path_and_expected_format()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "nope.jsonl");
        var e = Assert.Throws<DataFormatException>(() => JsonlDataset.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("\"response\"", e.Message);
        Assert.Contains("\"text\"", e.Message);
    }

    [Fact]
    public void Bad_json_names_file_and_line()
    {
        string path = WriteFile("{\"text\":\"a\"}\n{\"text\": oops}\n");
        var e = Assert.Throws<DataFormatException>(() => JsonlDataset.Load(path));
        Assert.StartsWith($"{path}:2: not valid JSON", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Line_that_is_not_an_object_is_rejected_with_its_line()
    {
        var e = LoadFails("[1,2]\n");
        Assert.Contains(":1: expected a JSON object, found an array", e.Message);
    }

    [Fact]
    public void Record_without_response_or_text_names_line_and_both_fields()
    {
        var e = LoadFails("{\"text\":\"a\"}\n{\"text\":\"b\"}\n{\"prompt\":\"only a prompt\",\"task\":\"t\"}\n");
        Assert.EndsWith(":3: needs \"response\" (with optional \"prompt\") or \"text\".", e.Message);
    }

    [Fact]
    public void Non_string_field_names_field_and_line()
    {
        var e = LoadFails("{\"prompt\":\"p\",\"response\":42}\n");
        Assert.Contains(":1: \"response\" must be a string, found a number", e.Message);
        e = LoadFails("{\"text\":\"p\",\"task\":[\"a\"]}\n");
        Assert.Contains(":1: \"task\" must be a string, found an array", e.Message);
    }

    [Fact]
    public void Response_and_text_together_are_ambiguous()
    {
        var e = LoadFails("{\"response\":\"r\",\"text\":\"t\"}\n");
        Assert.Contains(":1: has both \"response\" and \"text\"", e.Message);
    }

    [Fact]
    public void Missing_task_is_an_error_only_when_required()
    {
        string content = "{\"text\":\"a\",\"task\":\"x\"}\n{\"text\":\"b\"}\n";
        Assert.Equal(2, JsonlDataset.Load(WriteFile(content)).Count);
        var e = LoadFails(content, requireTask: true);
        Assert.Contains(":2: no \"task\"", e.Message);
    }

    [Fact]
    public void Unknown_task_names_it_and_lists_known_tasks()
    {
        var e = LoadFails("{\"text\":\"a\",\"task\":\"add\"}\n{\"text\":\"b\",\"task\":\"ad\"}\n", known: ["sort", "add"]);
        Assert.Contains(":2: unknown task \"ad\"; known tasks: add, sort.", e.Message);
    }

    [Fact]
    public void Empty_file_is_rejected()
    {
        var e = LoadFails("\n  \n");
        Assert.Contains("has no records", e.Message);
    }
}
