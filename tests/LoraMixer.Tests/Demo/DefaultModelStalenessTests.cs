using LoraMixer.Demo;

namespace LoraMixer.Tests.Demo;

public sealed class DefaultModelStalenessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lm-stale-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void WriteConfig(string pretraining) =>
        File.WriteAllText(Path.Combine(_dir, "config.json"), "{\"model_type\":\"llama\"" + pretraining + "}");

    [Fact]
    public void A_cache_pretrained_with_fewer_steps_is_stale_and_says_which_setting_changed()
    {
        // The 49.5 / 48.0 discrepancy of docs/results.md: a cache of the 600-step recipe reused after the recipe became 1,500.
        WriteConfig(",\"loramixer_pretraining\":{\"version\":\"v1\",\"arch\":\"llama\",\"steps\":600,\"documents\":20000,\"seed\":0}");
        string? why = DefaultModel.Staleness(_dir, new PretrainSettings { Steps = 1500 });
        Assert.Equal("it was pretrained with steps 600, and the recipe now has 1500", why);
    }

    [Fact]
    public void A_cache_of_the_same_settings_is_current_and_unrecorded_settings_are_not_compared()
    {
        WriteConfig(",\"loramixer_pretraining\":{\"version\":\"v1\",\"arch\":\"llama\",\"steps\":1500,\"documents\":20000,\"seed\":0}");
        Assert.Null(DefaultModel.Staleness(_dir, new PretrainSettings()));
        Assert.Equal("it was pretrained with seed 0, and the recipe now has 3", DefaultModel.Staleness(_dir, new PretrainSettings { Seed = 3 }));
        WriteConfig(",\"loramixer_pretraining\":{\"version\":\"v1\",\"arch\":\"llama\",\"steps\":1500,\"documents\":20000,\"seed\":0,\"batch_size\":32,\"learning_rate\":0.003}");
        Assert.Null(DefaultModel.Staleness(_dir, new PretrainSettings()));
        Assert.Equal("it was pretrained with learning_rate 0.003, and the recipe now has 0.001",
            DefaultModel.Staleness(_dir, new PretrainSettings { LearningRate = 1e-3 }));
    }

    [Fact]
    public void A_folder_not_pretrained_here_is_never_called_stale()
    {
        WriteConfig("");
        Assert.Null(DefaultModel.Staleness(_dir, new PretrainSettings { Steps = 10 }));
    }
}
