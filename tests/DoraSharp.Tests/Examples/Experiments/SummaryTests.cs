using DoraSharp.Examples.Experiments;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

public sealed class SummaryTests
{
    [Fact]
    public void Mean_and_sample_standard_deviation()
    {
        var s = new Summary([0.5, 0.7, 0.9]);
        Assert.Equal(0.7, s.Mean, 12);
        Assert.Equal(0.2, s.Std!.Value, 12);   // sqrt((0.04 + 0 + 0.04) / 2)
    }

    [Fact]
    public void One_value_has_no_standard_deviation()
    {
        var s = new Summary([0.25]);
        Assert.Equal(0.25, s.Mean);
        Assert.Null(s.Std);
        Assert.Throws<ArgumentException>(() => new Summary([]));
    }
}
