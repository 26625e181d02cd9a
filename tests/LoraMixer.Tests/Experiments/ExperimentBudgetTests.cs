using System.Text.Json.Nodes;
using LoraMixer.Demo;
using LoraMixer.Experiments;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Experiments;

[Collection(TrainingCollection.Name)]
public sealed class ExperimentBudgetTests
{
    private static readonly string[] Methods = { "multitask", "mixlora", "mole", "mixer-joint", "lorahub", "lorahub-pooled" };

    [Fact]
    public void Every_trained_method_gets_stage_1_plus_stage_2_steps_and_LoRAHub_logs_one_bounded_weight_vector_per_task()
    {
        string root = TestPaths.NewTempDir();
        string baseDir = Path.Combine(root, "base");
        DefaultModel.Pretrain(baseDir, DemoOptions.Quick(root, baseDir).Pretrain);
        var recipe = new ExperimentRecipe
        {
            Name = "b", BaseModel = baseDir, Tasks = new[] { "add", "sentiment" },
            Stage1Samples = 12, Stage1Steps = 3, Stage2Samples = 16, Stage2Steps = 2, Rank = 2, TopK = 2, BatchSize = 4, MaxLength = 48,
            Methods = Methods, Seeds = new[] { 0 }, DemoTestPerTask = 2,
        };
        string runDir = Path.Combine(root, "run");
        ExperimentRunner.Run(recipe, runDir, (_, work) => work(null!, default), _ => { });
        JsonNode Result(string id) => JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, "seed-0", "results", id + ".json")))!;

        foreach (var id in new[] { "multitask", "mixlora", "mole", "mixer-joint" })
        {
            var budget = Result(id)["budget"]!;
            Assert.Equal(5, (long)budget["optimizer_steps"]!); // 3 + 2
            Assert.Equal(20, (long)budget["samples"]!);        // 5 steps × 4
            Assert.True((long)budget["trained_params"]! > 0, id);
            Assert.True((long)budget["total_params"]! > (long)budget["trained_params"]!, $"{id}: the total includes the base model");
        }
        // MixLoRA at its paper's defaults: 8 experts per block, so its experts hold 8 × (gate + up + down) LoRAs.
        Assert.True((long)Result("mixlora")["trainable_params"]! > (long)Result("multitask")["trainable_params"]!);

        var hub = Result("lorahub");
        Assert.Equal(3, (long)hub["budget"]!["optimizer_steps"]!); // stage 1, then a gradient-free search
        var weights = hub["lorahub"]!["weights"]!.AsObject();
        Assert.Equal(recipe.Tasks, weights.Select(w => w.Key));
        Assert.All(weights, w => Assert.All(w.Value!.AsArray(), v => Assert.InRange((double)v!, -1.5, 1.5)));
        Assert.Equal(2 * 40, (long)hub["budget"]!["search_evaluations"]!);
        Assert.Equal(new[] { "pooled" }, Result("lorahub-pooled")["lorahub"]!["weights"]!.AsObject().Select(w => w.Key));
    }
}
