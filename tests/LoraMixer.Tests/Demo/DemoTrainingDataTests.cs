using LoraMixer.Data;
using LoraMixer.Demo;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Demo;

public sealed class DemoTrainingDataTests
{
    [Fact]
    public void Demo_items_written_as_jsonl_load_encode_and_collate_with_loss_exactly_on_answer_and_eos()
    {
        string dir = TestPaths.NewTempDir();
        DemoTokenizer.WriteFiles(dir);
        var tokenizer = TokenizerLoader.Load(dir);
        var taskNames = DemoSuite.Tasks.Select(t => t.Name).ToArray();
        var items = taskNames.SelectMany(t => DemoSuite.Generate(t, 3, seed: 1)).ToArray();
        string path = Path.Combine(dir, "train.jsonl");
        JsonlDataset.Write(path, items.Select(DemoSuite.ToRecord));

        var records = JsonlDataset.Load(path, requireTask: true, knownTasks: taskNames);
        var encoder = new ExampleEncoder(tokenizer, 64, taskNames);
        var examples = records.Select(encoder.Encode).ToArray();
        using var batch = BatchCollator.Collate(examples, DemoTokenizer.PadId, CPU);

        long[] targets = batch.TargetIds.data<long>().ToArray();
        float[] mask = batch.TargetMask.data<float>().ToArray();
        long[] tasks = batch.TaskIds.data<long>().ToArray();
        int width = batch.SequenceLength;
        for (int b = 0; b < items.Length; b++)
        {
            var trained = Enumerable.Range(0, width).Where(t => mask[b * width + t] == 1f).Select(t => (int)targets[b * width + t]).ToList();
            Assert.Equal(DemoTokenizer.EosId, trained[^1]);
            Assert.Equal(items[b].Response, tokenizer.Decode(trained));
            Assert.Equal(Array.IndexOf(taskNames, items[b].Task), tasks[b]);
            Assert.Equal(items[b].Prompt.Length + 1, examples[b].LossMask.TakeWhile(m => !m).Count());
        }
    }
}
