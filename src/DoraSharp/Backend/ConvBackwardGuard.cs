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
/// The library prints nothing: the switch is reported by <see cref="MkldnnDisabled"/> and <see cref="Report"/>, which an
/// application renders (the <c>dora</c> CLI writes one line to standard error).
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

    /// <summary>
    /// Raised (outside the guard's lock, on the thread that ran the check) each time the guard switches libtorch's oneDNN
    /// kernels off process-wide because the check failed with them on; the argument is the check's result after the switch.
    /// </summary>
    public static event Action<ConvBackwardReport>? MkldnnDisabled;

    private static bool _repaired; // the guard switched oneDNN off: a later switch back on makes it check again

    /// <summary>
    /// Makes sure float32 conv2d input gradients are right, once per process (later calls return at once
    /// unless <see cref="MkldnnBackend.Enabled"/> was switched back on since).
    /// </summary>
    /// <exception cref="ConvBackendException">The gradients are wrong and switching oneDNN off did not fix them.</exception>
    public static void EnsureCorrect()
    {
        if (!Enabled) return;
        EnsureCorrectWith(ConvBackwardCheck.Run, MkldnnBackend.IsAvailable, () => MkldnnBackend.Enabled = false, () => MkldnnBackend.Enabled);
    }

    /// <summary><see cref="EnsureCorrect"/> with the check and the switch passed in (tests fake a faulty backend).</summary>
    internal static void EnsureCorrectWith(Func<ConvBackwardReport> check, bool canDisable, Action disable, Func<bool> mkldnnEnabled)
    {
        ConvBackwardReport? switched = null;
        lock (Gate)
        {
            if (Report is { Correct: true } && !(_repaired && mkldnnEnabled())) return;
            var (report, repaired) = Decide(check, canDisable, disable);
            Report = report;
            _repaired |= repaired;
            if (repaired) switched = report;
        }
        if (switched is not null) MkldnnDisabled?.Invoke(switched);
    }

    /// <summary>The guard's process-wide state, for tests that fake a check and put the real state back.</summary>
    internal static (ConvBackwardReport? Report, bool Repaired) State
    {
        get { lock (Gate) return (Report, _repaired); }
        set { lock (Gate) (Report, _repaired) = value; }
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
                "reachable in this libtorch build. Start the process with the environment variable DNNL_MAX_CPU_ISA=SSE41 " +
                "(AVX2 was not enough on the affected machine measured), or train in float64; see docs/known-issues.md. Set ConvBackwardGuard.Enabled = false to proceed anyway.", first);
        disable();
        var second = check();
        if (!second.Correct)
            throw new ConvBackendException(
                $"libtorch computes wrong float32 conv2d input gradients on this machine: {first}; with oneDNN switched off still {second}. " +
                "See docs/known-issues.md. Set ConvBackwardGuard.Enabled = false to proceed anyway.", second);
        return (second, true);
    }
}
