using LoraMixer.Training;

namespace LoraMixer.Tests.Training;

public sealed class LearningRateScheduleTests
{
    [Theory]
    // peak 1, 2 warm-up steps of 6, floor 0.1: warm-up 1/2, 2/2; then 0.1 + 0.45·(1 + cos(π·k/4)) for k = 1..4.
    [InlineData(1, 0.5)]
    [InlineData(2, 1.0)]
    [InlineData(3, 0.86819805153394639)] // 0.1 + 0.45·(1 + √2/2)
    [InlineData(4, 0.55)]                // 0.1 + 0.45
    [InlineData(5, 0.23180194846605361)] // 0.1 + 0.45·(1 − √2/2)
    [InlineData(6, 0.1)]
    public void Warmup_then_cosine_to_the_floor_at_the_last_step(int step, double expected)
    {
        var schedule = new LearningRateSchedule(1.0, warmupSteps: 2, minLearningRateRatio: 0.1);
        Assert.Equal(expected, schedule.At(step, 6), 12);
    }

    [Fact]
    public void Warmup_ratio_is_rounded_up_to_whole_steps()
    {
        var schedule = new LearningRateSchedule(2e-4, warmupRatio: 0.03);
        Assert.Equal(3, schedule.WarmupStepsFor(100));
        Assert.Equal(1, schedule.WarmupStepsFor(10));
        Assert.Equal(2e-4 / 3, schedule.At(1, 100), 15);
        Assert.Equal(2e-4, schedule.At(3, 100), 15);
        Assert.Equal(0.0, schedule.At(100, 100), 15);
    }

    [Fact]
    public void Without_warmup_the_first_step_is_near_the_peak_and_the_decay_is_monotone()
    {
        var schedule = new LearningRateSchedule(1.0);
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI / 8)), schedule.At(1, 8), 12);
        double[] values = Enumerable.Range(1, 8).Select(s => schedule.At(s, 8)).ToArray();
        Assert.True(values.Zip(values.Skip(1)).All(p => p.First > p.Second));
    }

    [Fact]
    public void Steps_outside_the_run_are_rejected()
    {
        var schedule = new LearningRateSchedule(1.0);
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.At(0, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.At(6, 5));
    }
}
