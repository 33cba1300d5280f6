using Xunit;

namespace DoraSharp.Tests;

/// <summary>
/// Tests that compare two runs for bit-identical results. libtorch's default generator is process-wide: a test
/// running in parallel that seeds it or draws from it between another test's manual_seed and its weight
/// initialisation changes that test's numbers. These classes therefore run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SeededRuns
{
    public const string Name = "Seeded runs (process-wide torch RNG)";
}
