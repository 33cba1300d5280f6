using Xunit;

namespace DoraSharp.Tests;

/// <summary>
/// Tests that change process-wide state — libtorch's oneDNN switch (<see cref="MkldnnBackend"/>), its thread count
/// (torch.set_num_threads, which the CLI's --threads sets), Spectre.Console's global console — and put it back.
/// Such a change swaps the kernels under every other test running at the same time, so two evaluations of the same
/// operations in another test would no longer agree bit for bit (issue 13: 3e-8 in AdapterFuzzTests on an AMD CPU).
/// xunit runs collections with DisableParallelization after the parallel ones, one test at a time: nothing runs beside
/// these tests. The conv2d backend guard, which may switch oneDNN off once per process, is run before any test by
/// <see cref="DoraTestFramework"/>.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideState
{
    public const string Name = "Process-wide state (oneDNN switch, thread count, console)";
}
