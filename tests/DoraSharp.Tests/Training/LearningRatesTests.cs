using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Training;

public sealed class LearningRatesTests
{
    [Theory]
    [InlineData(LearningRateSchedule.Constant, new[] { 0.1, 0.1, 0.1, 0.1 })]
    [InlineData(LearningRateSchedule.Linear, new[] { 0.1, 0.075, 0.05, 0.025 })]
    [InlineData(LearningRateSchedule.Cosine, new[] { 0.1, 0.0853553390593, 0.05, 0.0146446609407 })]
    public void Four_steps_without_warmup(LearningRateSchedule schedule, double[] expected)
    {
        for (var step = 0; step < 4; step++)
            Assert.Equal(expected[step], LearningRates.At(schedule, 0.1, step, 4, 0), 12);
    }

    [Fact]
    public void Warmup_rises_linearly_then_decays()
    {
        // 2 warm-up steps of 4: 0.05, 0.1, then linear over the remaining 2 steps: 0.1, 0.05.
        var rates = Enumerable.Range(0, 4).Select(s => LearningRates.At(LearningRateSchedule.Linear, 0.1, s, 4, 2)).ToArray();
        Assert.Equal(new[] { 0.05, 0.1, 0.1, 0.05 }, rates.Select(r => Math.Round(r, 12)));
    }
}
