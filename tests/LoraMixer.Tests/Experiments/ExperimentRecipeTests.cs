using LoraMixer.Errors;
using LoraMixer.Experiments;

namespace LoraMixer.Tests.Experiments;

public sealed class ExperimentRecipeTests
{
    private static string Write(string json)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "recipe.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void A_recipe_reads_its_snake_case_fields_and_keeps_defaults_for_the_rest()
    {
        var recipe = ExperimentRecipe.Load(Write("""{"name": "x", "tasks": ["add", "sst2"], "stage1_samples": 7, "top_k": 1, "seeds": [4], "eval_limit": null}"""));
        Assert.Equal("x", recipe.Name);
        Assert.Equal(new[] { "add", "sst2" }, recipe.Tasks);
        Assert.Equal(7, recipe.Stage1Samples);
        Assert.Equal(1, recipe.TopK);
        Assert.Equal(new[] { 4 }, recipe.Seeds);
        Assert.Null(recipe.EvalLimit);
        Assert.Equal(ExperimentMethods.All.Select(m => m.Id), recipe.Methods);
        Assert.Equal(8, recipe.Rank);
    }

    [Theory]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "rnak": 4}""", "rnak")]
    [InlineData("""{"name": "x", "tasks": ["add", "poetry"]}""", "poetry")]
    [InlineData("""{"name": "x", "tasks": ["add", "humaneval"]}""", "no training split")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "methods": ["base", "lora-mixer"]}""", "lora-mixer")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "top_k": 3}""", "top_k must be between 1 and the number of experts (2), got 3")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "rank": 0}""", "rank")]
    [InlineData("""{"name": "x", "tasks": ["add"]}""", "two tasks")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "seeds": []}""", "seeds")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"],""", "recipe.json")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "router_input": "mean"}""", "router_input must be token or causal_mean, got 'mean'")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "stage2_routing": "hard"}""", "stage2_routing must be soft or straight_through, got 'hard'")]
    [InlineData("""{"name": "x", "tasks": ["add", "sst2"], "router_supervision": -1}""", "router_supervision must be a number ≥ 0")]
    public void A_bad_recipe_names_the_file_and_the_problem(string json, string expected)
    {
        string path = Write(json);
        var e = Assert.Throws<DataFormatException>(() => ExperimentRecipe.Load(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_missing_recipe_names_its_path()
    {
        var e = Assert.Throws<DataFormatException>(() => ExperimentRecipe.Load("/nonexistent/recipe.json"));
        Assert.Contains("/nonexistent/recipe.json", e.Message);
    }

    [Fact]
    public void The_hash_ignores_seeds_and_methods_but_not_training_settings()
    {
        var recipe = new ExperimentRecipe { Name = "x", Tasks = new[] { "add", "sort" } };
        Assert.Equal(recipe.Hash(), (recipe with { Seeds = new[] { 0, 1, 2, 3 }, Methods = new[] { "base" } }).Hash());
        Assert.NotEqual(recipe.Hash(), (recipe with { Rank = 4 }).Hash());
        Assert.NotEqual(recipe.Hash(), (recipe with { Tasks = new[] { "add", "lookup" } }).Hash());
    }

    [Fact]
    public void The_committed_recipes_are_valid()
    {
        var files = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "recipes"), "*.json");
        Assert.NotEmpty(files);
        foreach (var file in files) ExperimentRecipe.Load(file);
    }

    [Fact]
    public void The_router_design_is_the_preset_with_the_recipe_overrides_and_WithPreset_writes_a_preset_out()
    {
        var recipe = new ExperimentRecipe { Name = "x", Tasks = ["add", "sort"], RouterPreset = "paper", RouterInput = "causal_mean", RouterSupervision = 0.5 };
        var preset = recipe.Preset();
        Assert.Equal(LoraMixer.Mixing.RouterPreset.Paper with { Input = LoraMixer.Mixing.RouterInput.CausalMean, Supervision = 0.5 }, preset);
        // Written out in full, a preset reads back as itself, also through the recipe's JSON.
        var custom = LoraMixer.Mixing.RouterPreset.Default with { Granularity = LoraMixer.Mixing.RoutingGranularity.Token, Stage2Routing = LoraMixer.Mixing.RoutingMode.StraightThrough };
        string path = Write(recipe.WithPreset(custom).ToJson());
        Assert.Equal(custom, ExperimentRecipe.Load(path).Preset());
    }
}
