using LoraMixer.Mixing;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

public sealed class RoutingStatisticsTests
{
    [Fact]
    public void Task_expert_shares_load_and_entropy_count_real_tokens_only()
    {
        var stats = new RoutingStatistics(new[] { "model.layers.0.router" }, new[] { "add", "sort" }, new[] { "add", "sort" });
        // Sample 0 (task add): tokens → experts 0, 0, padding; sample 1 (task sort): tokens → 1, 0, 1.
        var p = tensor(new float[] { 0.9f, 0.1f, 0.6f, 0.4f, 0.1f, 0.9f, 0.2f, 0.8f, 0.7f, 0.3f, 0.4f, 0.6f }).reshape(2, 3, 2);
        var mask = tensor(new long[] { 1, 1, 0, 1, 1, 1 }).reshape(2, 3);
        stats.Add(new[] { p }, mask, tensor(new long[] { 0, 1 }));
        var m = stats.TaskExpert(0);
        Assert.Equal(1.0, m[0, 0], 6);
        Assert.Equal(0.0, m[0, 1], 6);
        Assert.Equal(1.0 / 3, m[1, 0], 6);
        Assert.Equal(2.0 / 3, m[1, 1], 6);
        Assert.Equal(new[] { 0.6, 0.4 }, stats.Load(0).Select(v => Math.Round(v, 6)));
        double H(double a) => -(a * Math.Log(a) + (1 - a) * Math.Log(1 - a));
        Assert.Equal((H(0.9) + H(0.6) + H(0.2) + H(0.7) + H(0.4)) / 5, stats.MeanEntropy(0), 5);
        Assert.Equal(4.0 / 5, stats.TaskAlignment(), 6); // add→add twice, sort→sort twice, out of 5 tokens

        // The JSON keeps the counts, so statistics read back (as the demo report does) are the same.
        var back = RoutingStatistics.FromJson(System.Text.Json.Nodes.JsonNode.Parse(stats.ToJson().ToJsonString())!.AsObject());
        Assert.Equal(stats.RouterNames, back.RouterNames);
        Assert.Equal(stats.TaskNames, back.TaskNames);
        Assert.Equal(stats.Load(0), back.Load(0));
        Assert.Equal(stats.TaskExpert(0), back.TaskExpert(0));
        Assert.Equal(stats.MeanEntropy(0), back.MeanEntropy(0), 12);
        Assert.Equal(stats.TaskAlignment(), back.TaskAlignment());
    }
}
