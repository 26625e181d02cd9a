using LoraMixer.Generation;
using LoraMixer.Serving;

namespace LoraMixer.Tests.Serving;

/// <summary>
/// The decode loop with continuous batching against <see cref="TextGenerator"/>: requests submitted together (rows of
/// different lengths, different adapters in one batch) produce exactly the greedy tokens that <c>generate</c>
/// produces for each prompt alone.
/// </summary>
public sealed class ServingEngineTests
{
    private static async Task<(string Text, GenerationSummary Summary)[]> RunAll(ServingEngine engine, IEnumerable<GenerationRequest> requests)
    {
        var handles = requests.Select(r => engine.Submit(r)).ToArray();
        return await Task.WhenAll(handles.Select(h => h.CompleteAsync()));
    }

    [Fact]
    public async Task Greedy_batched_output_equals_generate_for_every_prompt()
    {
        var options = ServingFixtures.Greedy(24);
        var expected = ServingFixtures.Prompts.Select(p => ServingFixtures.Generate(ServingFixtures.Llama, p, options)).ToArray();
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, MaxBatch = 8 });
        string model = engine.Models[0].Id;
        var results = await RunAll(engine, ServingFixtures.Prompts.Select(p => new GenerationRequest(model, engine.EncodePrompt(p), options)));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Text, results[i].Text);
            Assert.Equal(expected[i].TokenIds.Count, results[i].Summary.CompletionTokens);
            Assert.Equal(FinishReason.Length, results[i].Summary.FinishReason);
        }
    }

    [Fact]
    public async Task An_int8_engine_equals_generate_on_the_int8_model_for_every_prompt()
    {
        var options = ServingFixtures.Greedy(24);
        var expected = ServingFixtures.Prompts.Select(p => ServingFixtures.Generate(ServingFixtures.Llama, p, options, int8: true)).ToArray();
        var logged = new List<string>();
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, MaxBatch = 8, Quantize = "int8" }, logged.Add);
        Assert.Contains(logged, m => m.Contains("int8: "));
        string model = engine.Models[0].Id;
        var results = await RunAll(engine, ServingFixtures.Prompts.Select(p => new GenerationRequest(model, engine.EncodePrompt(p), options)));
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i].Text, results[i].Text);
        Assert.Throws<ArgumentException>(() => new ServingOptions { ModelDir = ServingFixtures.Llama, Quantize = "fp8" }.Validate());
    }

    // Submits every job greedily, 3 ms apart so that later ones join while earlier ones run; what was served, in order.
    private static async Task<(string Text, GenerationSummary Summary)[]> ServeStaggered(ServingEngine engine, string model, (string Prompt, int Tokens)[] jobs)
    {
        var handles = new List<GenerationHandle>();
        foreach (var (prompt, tokens) in jobs)
        {
            handles.Add(engine.Submit(new GenerationRequest(model, engine.EncodePrompt(prompt), ServingFixtures.Greedy(tokens))));
            await Task.Delay(3);
        }
        return await Task.WhenAll(handles.Select(h => h.CompleteAsync()));
    }

    [Fact]
    public async Task Rows_that_join_and_leave_mid_stream_in_reused_slots_equal_generate()
    {
        // Two running rows at most: every later request joins when one leaves, in the slot it freed, while the
        // other row keeps decoding; lengths differ (prompts and max tokens) and some run past the lane cache's
        // first 64 positions, so the cache grows while rows run.
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, MaxBatch = 2 });
        string model = engine.Models[0].Id;
        var jobs = Enumerable.Range(0, 7).Select(i => (Prompt: ServingFixtures.Prompts[i % ServingFixtures.Prompts.Length], Tokens: 5 + (i * 23) % 70)).ToArray();
        var results = await ServeStaggered(engine, model, jobs);
        for (int i = 0; i < jobs.Length; i++)
        {
            var expected = ServingFixtures.Generate(ServingFixtures.Llama, jobs[i].Prompt, ServingFixtures.Greedy(jobs[i].Tokens));
            Assert.True(expected.Text == results[i].Text, $"request {i} ({jobs[i].Tokens} tokens): expected '{expected.Text}', served '{results[i].Text}'");
            Assert.Equal(jobs[i].Tokens, results[i].Summary.CompletionTokens);
        }
    }

    [Fact]
    public async Task Requests_arriving_together_are_prefilled_in_one_pass_and_equal_generate()
    {
        // One request runs; four more arrive while the loop sleeps between steps, so they are admitted together and
        // their prompts (different lengths) run as one kernel pass into free slots, next to the running row.
        using var engine = ServingEngine.Load(new ServingOptions
        {
            ModelDir = ServingFixtures.Llama, MaxBatch = 8, StepInterval = TimeSpan.FromMilliseconds(40),
        });
        string model = engine.Models[0].Id;
        var jobs = Enumerable.Range(0, 5).Select(i => (Prompt: ServingFixtures.Prompts[i % ServingFixtures.Prompts.Length], Tokens: 6 + 3 * i)).ToArray();
        var requests = jobs.Select(j => new GenerationRequest(model, engine.EncodePrompt(j.Prompt), ServingFixtures.Greedy(j.Tokens))).ToArray();
        var handles = new List<GenerationHandle> { engine.Submit(requests[0]) };
        await Task.Delay(100);
        handles.AddRange(requests.Skip(1).Select(r => engine.Submit(r)));
        var results = await Task.WhenAll(handles.Select(h => h.CompleteAsync()));
        for (int i = 0; i < jobs.Length; i++)
        {
            var expected = ServingFixtures.Generate(ServingFixtures.Llama, jobs[i].Prompt, ServingFixtures.Greedy(jobs[i].Tokens));
            Assert.True(expected.Text == results[i].Text, $"request {i}: expected '{expected.Text}', served '{results[i].Text}'");
        }
        Assert.True(engine.Metrics.PrefillPasses < jobs.Length, $"{engine.Metrics.PrefillPasses} prefill passes for {jobs.Length} requests");
    }

    [Fact]
    public async Task Without_the_decode_kernel_rows_share_a_padded_batch_and_equal_generate_on_the_torchsharp_path()
    {
        // The lane's other mode: the first step finds the kernel off, moves its rows out of their slots into one
        // left-padded batch cache, and rebuilds it as rows join and leave.
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, MaxBatch = 2, UseDecodeKernel = false });
        string model = engine.Models[0].Id;
        var jobs = Enumerable.Range(0, 5).Select(i => (Prompt: ServingFixtures.Prompts[i % ServingFixtures.Prompts.Length], Tokens: 4 + (i * 7) % 15)).ToArray();
        var results = await ServeStaggered(engine, model, jobs);
        for (int i = 0; i < jobs.Length; i++)
        {
            var expected = ServingFixtures.Generate(ServingFixtures.Llama, jobs[i].Prompt, ServingFixtures.Greedy(jobs[i].Tokens), kernel: false);
            Assert.True(expected.Text == results[i].Text, $"request {i}: expected '{expected.Text}', served '{results[i].Text}'");
        }
    }

    [Fact]
    public async Task Requests_for_different_adapters_share_a_batch_and_equal_generate_with_the_adapter_merged()
    {
        var options = ServingFixtures.Greedy(20);
        string[] adapters = ["alpha", "beta", "gamma"];
        using var engine = ServingEngine.Load(new ServingOptions
        {
            ModelDir = ServingFixtures.Llama,
            ModelName = "base",
            Adapters = adapters.Select(a => (a, ServingFixtures.Expert(a))).ToArray(),
        });
        var jobs = new List<(string Model, string Prompt)>();
        for (int i = 0; i < ServingFixtures.Prompts.Length; i++)
        {
            jobs.Add((adapters[i % 3], ServingFixtures.Prompts[i]));
            jobs.Add(("base", ServingFixtures.Prompts[i]));
        }
        var results = await RunAll(engine, jobs.Select(j => new GenerationRequest(j.Model, engine.EncodePrompt(j.Prompt), options)));
        for (int i = 0; i < jobs.Count; i++)
        {
            var (model, prompt) = jobs[i];
            var expected = ServingFixtures.Generate(ServingFixtures.Llama, prompt, options, adapter: model == "base" ? null : ServingFixtures.Expert(model));
            Assert.True(expected.Text == results[i].Text, $"{model} on '{prompt}': expected '{expected.Text}', served '{results[i].Text}'");
            if (model == "base") Assert.Empty(results[i].Summary.ExpertShare);
            else Assert.Equal(1.0, results[i].Summary.ExpertShare[model]);
        }
        // The adapters do change the output, so the comparison above tells them apart.
        Assert.NotEqual(results[0].Text, results[1].Text);
    }

    [Fact]
    public async Task A_mixer_routes_per_token_as_generate_with_the_mixer_does()
    {
        var options = ServingFixtures.Greedy(16);
        using var engine = ServingEngine.Load(new ServingOptions
        {
            ModelDir = ServingFixtures.Llama,
            Mixers = [("mix", ServingFixtures.LlamaMixer)],
        });
        var results = await RunAll(engine, ServingFixtures.Prompts.Select(p => new GenerationRequest("mix", engine.EncodePrompt(p), options)));
        for (int i = 0; i < ServingFixtures.Prompts.Length; i++)
        {
            var expected = ServingFixtures.Generate(ServingFixtures.Llama, ServingFixtures.Prompts[i], options, mixer: ServingFixtures.LlamaMixer);
            Assert.Equal(expected.Text, results[i].Text);
            var share = results[i].Summary.ExpertShare;
            Assert.Equal(1.0, share.Values.Sum(), 6);
            Assert.True(share.Count >= 2, "top-2 routing uses at least two experts");
        }
    }

    [Fact]
    public async Task Forcing_a_mixer_expert_equals_generate_with_that_expert_merged()
    {
        var options = ServingFixtures.Greedy(16);
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, Mixers = [("mix", ServingFixtures.LlamaMixer)] });
        string prompt = ServingFixtures.Prompts[1];
        var results = await RunAll(engine, new[] { "alpha", "gamma" }.Select(e =>
            new GenerationRequest("mix", engine.EncodePrompt(prompt), options, new RoutingOverride(ForceExpert: e))));
        Assert.Equal(ServingFixtures.Generate(ServingFixtures.Llama, prompt, options, adapter: ServingFixtures.Expert("alpha")).Text, results[0].Text);
        Assert.Equal(ServingFixtures.Generate(ServingFixtures.Llama, prompt, options, adapter: ServingFixtures.Expert("gamma")).Text, results[1].Text);
        Assert.Equal(1.0, results[0].Summary.ExpertShare["alpha"]);
    }

    [Fact]
    public async Task Restricting_a_mixer_to_one_expert_with_top_1_equals_forcing_it()
    {
        var options = ServingFixtures.Greedy(12);
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, Mixers = [("mix", ServingFixtures.LlamaMixer)] });
        var ids = engine.EncodePrompt(ServingFixtures.Prompts[3]);
        var results = await RunAll(engine,
        [
            new GenerationRequest("mix", ids, options, new RoutingOverride(Experts: ["beta"])),
            new GenerationRequest("mix", ids, options, new RoutingOverride(ForceExpert: "beta")),
            new GenerationRequest("mix", ids, options, new RoutingOverride(TopK: 1, Experts: ["alpha", "gamma"])),
        ]);
        Assert.Equal(results[1].Text, results[0].Text);
        Assert.Equal(["beta"], results[0].Summary.ExpertShare.Keys);
        Assert.DoesNotContain("beta", results[2].Summary.ExpertShare.Keys);
    }

    [Fact]
    public async Task Mamba_requests_run_side_by_side_and_equal_generate()
    {
        var options = ServingFixtures.Greedy(10);
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Mamba });
        var prompts = ServingFixtures.Prompts.Take(3).ToArray();
        var results = await RunAll(engine, prompts.Select(p => new GenerationRequest(engine.Models[0].Id, engine.EncodePrompt(p), options)));
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(ServingFixtures.Generate(ServingFixtures.Mamba, prompts[i], options).Text, results[i].Text);
    }
}
