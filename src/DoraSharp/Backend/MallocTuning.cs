namespace DoraSharp;

/// <summary>
/// Keeps the memory of freed tensors in the process instead of handing it back to the kernel after every step
/// (glibc's malloc, Linux). libtorch allocates each activation and gradient with malloc. glibc serves a block above its
/// mmap threshold (128 KB at first, adapting up to 32 MB) with a fresh <c>mmap</c> and unmaps it when freed, and it
/// trims the heap's top once more than its trim threshold is free there: each training step then faults its whole
/// working set in again, page by page. On the AMD EPYC VM of issue 15 that kernel time was a large part of a MiniLM
/// training step, and it scattered the step times (docs/performance.md, "The memory allocator").
/// <para>
/// <see cref="Apply"/> sets <c>M_MMAP_THRESHOLD</c> to <see cref="MmapThreshold"/> and <c>M_TRIM_THRESHOLD</c> to
/// <see cref="int.MaxValue"/>: blocks up to 1 GiB come from the heap, and freed memory is reused by the next step.
/// The cost is that the process keeps its peak heap until it ends (its resident memory does not fall after a peak).
/// Process-wide and permanent; the library never calls it by itself. The <c>dora</c> CLI does at start-up unless
/// <see cref="SwitchVariable"/> is <c>0</c>.
/// </para>
/// </summary>
public static class MallocTuning
{
    /// <summary>The CLI's switch: <c>0</c> leaves glibc's defaults, <c>1</c> or unset applies the tuning.</summary>
    public const string SwitchVariable = "DORASHARP_MALLOC_TUNING";

    /// <summary>Blocks up to this size (1 GiB) come from the heap instead of their own mmap.</summary>
    public const int MmapThreshold = 1 << 30;

    // glibc's mallopt parameters (malloc.h).
    private const int TrimThresholdOption = -1, MmapThresholdOption = -3;

    private static readonly object Gate = new();

    /// <summary>True once <see cref="Apply"/> has succeeded in this process.</summary>
    public static bool IsApplied { get; private set; }

    /// <summary>
    /// Applies the tuning; true when glibc accepted both settings, false elsewhere (not Linux, not glibc, or refused).
    /// </summary>
    public static bool Apply()
    {
        if (!OperatingSystem.IsLinux()) return false;
        lock (Gate)
        {
            // The mmap threshold first: setting either option switches glibc's adaptive thresholds off, and a trim
            // threshold alone then serves every block above 128 KB by mmap (a 10× slower MiniLM step, measured).
            var applied = NativeSymbols.SetMallocOption(MmapThresholdOption, MmapThreshold)
                && NativeSymbols.SetMallocOption(TrimThresholdOption, int.MaxValue);
            IsApplied |= applied;
            return applied;
        }
    }

    /// <summary>
    /// Reads <see cref="SwitchVariable"/>'s value: true for unset, empty or <c>1</c>, false for <c>0</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value (named in the message with what is accepted).</exception>
    public static bool IsEnabledBy(string? value) => value switch
    {
        null or "" or "1" => true,
        "0" => false,
        _ => throw new ArgumentException($"{SwitchVariable}='{value}' is not understood: use 0 (glibc's defaults) or 1 (keep freed memory in the process, the default)."),
    };
}
