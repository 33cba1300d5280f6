using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Training;

public sealed class BatchOrderTests
{
    [Fact]
    public void Known_answers_from_an_independent_implementation()
    {
        // Fisher–Yates driven by SplitMix64(Derive(seed, epoch)), computed in Python.
        Assert.Equal(new[] { 8, 2, 9, 7, 6, 1, 3, 4, 5, 0 }, BatchOrder.Permutation(10, 123, 0));
        Assert.Equal(new[] { 8, 0, 1, 2, 7, 5, 6, 4, 3, 9 }, BatchOrder.Permutation(10, 123, 1));
        Assert.Equal(new[] { 9, 6, 7, 3, 2, 5, 0, 4, 1, 8 }, BatchOrder.Permutation(10, 124, 0));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(63)]
    [InlineData(8000)]
    public void Every_epoch_is_a_permutation(int count)
    {
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var order = BatchOrder.Permutation(count, 7, epoch);
            Assert.Equal(Enumerable.Range(0, count), order.Order());
        }
    }

    [Fact]
    public void The_same_seed_and_epoch_give_the_same_order()
    {
        Assert.Equal(BatchOrder.Permutation(1000, 5, 3), BatchOrder.Permutation(1000, 5, 3));
        Assert.NotEqual(BatchOrder.Permutation(1000, 5, 3), BatchOrder.Permutation(1000, 5, 4));
        Assert.NotEqual(BatchOrder.Permutation(1000, 5, 3), BatchOrder.Permutation(1000, 6, 3));
    }

    [Theory]
    [InlineData(8000, 64, 125)]
    [InlineData(8001, 64, 126)]
    [InlineData(1, 64, 1)]
    [InlineData(0, 64, 0)]
    public void Batches_per_epoch_round_up(int count, int batch, int expected) =>
        Assert.Equal(expected, BatchOrder.BatchesPerEpoch(count, batch));
}
