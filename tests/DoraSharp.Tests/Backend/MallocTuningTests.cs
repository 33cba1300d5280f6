using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// <see cref="MallocTuning"/>: glibc serves large tensors from the heap once it is applied. Applying it is permanent and
/// process-wide (it changes where later blocks come from, not any value), so this runs alone
/// (<see cref="ProcessWideState"/>) and leaves it applied.
/// </summary>
[Collection(ProcessWideState.Name)]
public sealed class MallocTuningTests
{
    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("1", true)]
    [InlineData("0", false)]
    public void The_switch_reads_0_as_off_and_1_or_unset_as_on(string? value, bool expected)
        => Assert.Equal(expected, MallocTuning.IsEnabledBy(value));

    [Fact]
    public void A_misspelt_switch_is_refused_with_the_variable_and_the_value()
    {
        var e = Assert.Throws<ArgumentException>(() => MallocTuning.IsEnabledBy("off"));
        Assert.Contains(MallocTuning.SwitchVariable, e.Message);
        Assert.Contains("'off'", e.Message);
    }

    [Fact]
    public void Applied_a_40_MB_tensor_comes_from_the_heap_not_its_own_mmap()
    {
        if (!OperatingSystem.IsLinux()) return;                                    // glibc only; elsewhere Apply says false
        Assert.True(MallocTuning.Apply(), "glibc accepts both mallopt settings");
        Assert.True(MallocTuning.IsApplied);
        // 40 MB is above the largest mmap threshold glibc adapts to by itself (32 MB): without the tuning it is always
        // its own mmap, counted in mallinfo2's hblkhd.
        var before = NativeSymbols.MallocInfo()!.Value;
        using (var t = zeros(10 * 1024 * 1024))                                      // 40 MB of float32
        {
            var during = NativeSymbols.MallocInfo()!.Value;
            Assert.True(during.HBlkHd < before.HBlkHd + 40_000_000,
                $"mmapped bytes went from {before.HBlkHd} to {during.HBlkHd}: the tensor was not served from the heap");
            Assert.True(during.UordBlks >= before.UordBlks + 40_000_000 || during.Arena >= before.Arena + 40_000_000,
                $"heap in use {before.UordBlks} -> {during.UordBlks}, arena {before.Arena} -> {during.Arena}: the tensor is not in the heap");
        }
    }
}
