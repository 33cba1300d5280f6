namespace DoraSharp;

/// <summary>
/// Protects training from the float32 conv2d input-gradient hazard described in
/// <see cref="ConvBackwardCheck"/> and docs/known-issues.md. <see cref="EnsureCorrect"/> runs the check once per
/// process; when the gradient is wrong it switches libtorch's oneDNN kernels off
/// (<see cref="MkldnnBackend.Enabled"/> = false, PyTorch's <c>torch.backends.mkldnn.enabled = False</c>, the
/// setting PEFT's reference values were computed with) and checks again. If that does not help, or the switch
/// is unreachable, it throws rather than let a model train on wrong gradients.
/// <see cref="LoraConv2d"/> and <see cref="LoraModel.Wrap"/> (for a model holding any convolution) call it,
/// so users and tests are protected without doing anything. On machines without the fault nothing changes.
/// </summary>
public static class ConvBackwardGuard
{
    private static readonly object Gate = new();

    /// <summary>
    /// Set to false (before creating adapters) to skip the check, e.g. when oneDNN was already disabled or
    /// the process only runs float64 or inference. Default true.
    /// </summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>The last check's result (after the repair, if one was needed), or null before the first check.</summary>
    public static ConvBackwardReport? Report { get; private set; }

    /// <summary>True when the guard switched oneDNN off because the check failed with it on.</summary>
    public static bool Repaired { get; private set; }

    /// <summary>
    /// Makes sure float32 conv2d input gradients are right, once per process (later calls return at once
    /// unless <see cref="MkldnnBackend.Enabled"/> was switched back on since).
    /// </summary>
    /// <exception cref="ConvBackendException">The gradients are wrong and switching oneDNN off did not fix them.</exception>
    public static void EnsureCorrect()
    {
        if (!Enabled) return;
        lock (Gate)
        {
            if (Report is { Correct: true } && !(Repaired && MkldnnBackend.Enabled)) return;
            var (report, repaired) = Decide(
                ConvBackwardCheck.Run,
                MkldnnBackend.IsAvailable,
                () => MkldnnBackend.Enabled = false);
            Report = report;
            Repaired |= repaired;
            if (repaired)
                Console.Error.WriteLine(
                    "DoraSharp: libtorch's oneDNN float32 conv2d backward gives wrong input gradients on this CPU; " +
                    $"oneDNN kernels were switched off (see docs/known-issues.md). Now: {report}");
        }
    }

    /// <summary>
    /// The guard's decision, separated for testing: run <paramref name="check"/>; when it fails and oneDNN can
    /// be switched off, do so and check again. Throws when the result is still wrong.
    /// </summary>
    internal static (ConvBackwardReport Report, bool Repaired) Decide(Func<ConvBackwardReport> check, bool canDisable, Action disable)
    {
        var first = check();
        if (first.Correct) return (first, false);
        if (!canDisable)
            throw new ConvBackendException(
                $"libtorch computes wrong float32 conv2d input gradients on this machine ({first}), and its oneDNN switch is not " +
                "reachable in this libtorch build. Start the process with the environment variable DNNL_MAX_CPU_ISA=AVX2 " +
                "(or SSE41), or train in float64; see docs/known-issues.md. Set ConvBackwardGuard.Enabled = false to proceed anyway.", first);
        disable();
        var second = check();
        if (!second.Correct)
            throw new ConvBackendException(
                $"libtorch computes wrong float32 conv2d input gradients on this machine: {first}; with oneDNN switched off still {second}. " +
                "See docs/known-issues.md. Set ConvBackwardGuard.Enabled = false to proceed anyway.", second);
        return (second, true);
    }
}
