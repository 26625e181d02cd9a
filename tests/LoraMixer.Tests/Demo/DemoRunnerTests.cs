using System.Text.Json.Nodes;
using LoraMixer.Models.Llama;
using LoraMixer.Data;
using LoraMixer.Demo;
using LoraMixer.Experiments;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Demo;

[Collection(TrainingCollection.Name)]
public sealed class DemoRunnerTests
{
    [Fact]
    public void Quick_demo_trains_every_method_and_writes_the_report()
    {
        string outDir = Path.Combine(TestPaths.NewTempDir(), "report"); // not there yet
        var lines = new List<string>();
        var result = DemoRunner.Run(DemoOptions.Quick(outDir, Path.Combine(outDir, "base")), (_, work) => work(null!, default), lines.Add);

        Assert.Contains(lines, l => l.StartsWith("pretraining the default model"));
        Assert.Equal(DemoRunner.MethodNames, result.Methods.Select(m => m.Method));
        Assert.All(result.Methods, m => Assert.Equal(DemoSuite.Tasks.Select(t => t.Name), m.Accuracy.Keys));
        Assert.Equal(0, result.Methods[0].TrainableParameters);
        Assert.True(result.Methods[2].TrainableParameters == result.Methods[1].TrainableParameters * DemoSuite.Tasks.Count,
            "the multi-task LoRA must have the parameter budget of all experts together");

        string readme = File.ReadAllText(Path.Combine(outDir, "README.md"));
        foreach (var method in DemoRunner.MethodNames) Assert.Contains(method, readme);
        foreach (var png in new[] { "accuracy.png", "loss-curves.png", "routing-lora-mixer-joint-layer0.png", "load-lora-mixer-plug-and-play.png" })
            Assert.True(File.Exists(Path.Combine(outDir, png)), $"{png} is missing");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!.AsObject();
        Assert.Equal(DemoRunner.MethodNames.Count, json["methods"]!.AsArray().Count);

        // The demo is a recipe of the experiment runner: its run folder holds the stage-1 experts and every
        // trained mixer, complete LoRA-Mixer folders that load onto the base model.
        string seed = Path.Combine(outDir, "seed-0");
        Assert.Equal(DemoRunner.Methods, ExperimentRecipe.Load(Path.Combine(outDir, ExperimentRunner.RecipeFile)).Methods);
        foreach (var dir in new[] { "experts", "mixers/mixer-joint", "mixers/mixer-pnp", "mixers/mixer-pnp-paper" })
        {
            using var model = LlamaLoader.Load(Path.Combine(outDir, "base"));
            using var mixer = MixerCheckpoint.Load(model, Path.Combine(seed, dir));
            Assert.Equal(DemoSuite.Tasks.Count, mixer.Experts);
        }
        Assert.True(File.Exists(Path.Combine(seed, "adapters", "multitask", "adapter_config.json")));
        // Both LoRA-Mixers use the default router; the extra row the paper's. Their records name the paradigm.
        var pnp = MixerConfig.Load(Path.Combine(seed, "mixers", "mixer-pnp"));
        Assert.Equal(RoutingGranularity.Sequence, pnp.RoutingGranularity);
        Assert.Equal("plug_and_play", pnp.Training["paradigm"]!.GetValue<string>());
        var joint = MixerConfig.Load(Path.Combine(seed, "mixers", "mixer-joint"));
        Assert.Equal(RouterInput.CausalMean, joint.RouterInput);
        Assert.Equal("joint", joint.Training["paradigm"]!.GetValue<string>());
        Assert.True(joint.Training["stage2"]!["train_experts"]!.GetValue<bool>());
        Assert.NotNull(joint.Training["stage1"]);
        Assert.Equal(RouterInput.Token, MixerConfig.Load(Path.Combine(seed, "mixers", "mixer-pnp-paper")).RouterInput);
        // Routing on the held-out items, for every LoRA-Mixer router (MoLE gates every matrix on its own, so it has none).
        Assert.Equal(new[] { "LoRA-Mixer (joint)", "LoRA-Mixer (plug-and-play)", "LoRA-Mixer (plug-and-play, paper's router)" },
            result.Routing.Keys.Order(StringComparer.Ordinal));

        // The suite as JSONL, every line with its task, for the command-line tools.
        var train = JsonlDataset.Load(Path.Combine(outDir, "data", "train.jsonl"), requireTask: true);
        var test = JsonlDataset.Load(Path.Combine(outDir, "data", "test.jsonl"), requireTask: true);
        Assert.Equal(DemoSuite.Tasks.Count * 24, train.Count);
        Assert.Equal(DemoSuite.Tasks.Count * 6, test.Count);
    }

    [Fact]
    public void Quick_demo_runs_on_a_Mamba_base_with_experts_on_in_proj_and_out_proj()
    {
        string outDir = TestPaths.NewTempDir();
        var quick = DemoOptions.Quick(outDir, Path.Combine(outDir, "base"));
        var options = quick with { Recipe = quick.Recipe with { Arch = "mamba" } };
        var result = DemoRunner.Run(options, (_, work) => work(null!, default), _ => { });
        Assert.Equal("MambaForCausalLM", result.Architecture);
        Assert.Equal(DemoRunner.MethodNames, result.Methods.Select(m => m.Method));
        var config = MixerConfig.Load(Path.Combine(outDir, "seed-0", "mixers", "mixer-pnp"));
        Assert.Equal(new[] { "in_proj", "out_proj" }, config.Targets);
        Assert.Equal("MambaForCausalLM", config.Architecture);
        Assert.Contains("backbone.layers.0.mixer.router", result.Routing.Values.First().RouterNames);
    }
}
