using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Training;

public sealed class SplitMix64Tests
{
    [Fact]
    public void Seed_zero_gives_the_reference_outputs()
    {
        // The first outputs of SplitMix64 from state 0, as in Vigna's reference splitmix64.c.
        var rng = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, rng.Next());
        Assert.Equal(0x6E789E6AA1B965F4UL, rng.Next());
        Assert.Equal(0x06C45D188009454FUL, rng.Next());
    }

    [Fact]
    public void Below_is_the_high_word_of_the_product()
    {
        // Expected values from an independent Python implementation: (next() * 10) >> 64 from state 123.
        var rng = new SplitMix64(123);
        var drawn = Enumerable.Range(0, 8).Select(_ => rng.Below(10)).ToArray();
        Assert.Equal(new ulong[] { 7, 9, 8, 6, 6, 6, 9, 4 }, drawn);
    }

    [Fact]
    public void Saving_the_state_resumes_the_stream()
    {
        var rng = new SplitMix64(42);
        rng.Next();
        var resumed = new SplitMix64(rng.State);
        Assert.Equal(rng.Next(), resumed.Next());
    }

    [Fact]
    public void Derive_matches_its_formula_and_separates_streams()
    {
        // Python: mix(123 ^ mix(stream + 1)).
        Assert.Equal(0xB45C818561F0B21DUL, SplitMix64.Derive(123, 0));
        Assert.Equal(0x3F2C2664EAD33DEFUL, SplitMix64.Derive(123, 1));
    }

    [Fact]
    public void Below_zero_is_refused() => Assert.Throws<ArgumentOutOfRangeException>(() => new SplitMix64(1).Below(0));
}
