namespace DoraSharp;

/// <summary>Which code path libtorch's matrix products take, as far as <see cref="BlasCheck"/> can tell.</summary>
public enum BlasPath
{
    /// <summary>libtorch has oneMKL and MKL dispatches to its instruction-set-specific kernels.</summary>
    MklOptimized,

    /// <summary>libtorch has oneMKL and MKL runs its generic kernels (code path 0): on a non-Intel CPU without the vendor fix.</summary>
    MklGeneric,

    /// <summary>libtorch has oneMKL but its code path could not be read.</summary>
    MklUnknown,

    /// <summary>The loaded libtorch has no oneMKL (another build or platform): the vendor check does not apply.</summary>
    NoMkl,
}

/// <summary>
/// What <see cref="BlasCheck.Run"/> found: the CPU, oneMKL's version and code path, whether the MKL vendor fix
/// (<see cref="MklVendorFix"/>) is active in this process, and optionally a measured single-thread sgemm rate.
/// </summary>
/// <param name="CpuVendor">CPUID's vendor string (GenuineIntel, AuthenticAMD, …); null when not x86.</param>
/// <param name="CpuModel">The CPU's brand string, or null.</param>
/// <param name="VectorIsa">The widest float FMA the CPU offers (<see cref="CpuIdentity.VectorIsa"/>).</param>
/// <param name="Path">The BLAS code path.</param>
/// <param name="MklVersion">MKL's version string, or null without MKL.</param>
/// <param name="MklCodePath">
/// MKL's <c>mkl_serv_cpu_detect()</c>: the kernel family MKL dispatches to; 0 is the generic path (verified on an
/// Intel Xeon by preloading a vendor check that answers 0: the code path drops from 7 to 0 and sgemm to a quarter).
/// Other values are MKL-internal and not documented; only "0 or not" is interpreted.
/// </param>
/// <param name="MklOwnVendorCheck">MKL's own <c>mkl_serv_intel_cpu_true()</c> called directly (the CPU as MKL sees it without the fix).</param>
/// <param name="OverrideActive">A preloaded <c>mkl_serv_intel_cpu_true</c> returning 1 resolves in this process (the fix, or an equivalent).</param>
/// <param name="OverrideLibrary">The file that override comes from, or null.</param>
/// <param name="Reexecuted">This process was re-executed to apply the fix (<see cref="MklVendorFix.GuardVariable"/> is set).</param>
/// <param name="FixLibrary">The fix found on disk (<see cref="MklVendorFix.FindLibrary"/>), or null.</param>
/// <param name="Threads">libtorch's intra-op threads (the sgemm rate is measured on one).</param>
/// <param name="SgemmGflops">Measured single-thread float32 GEMM rate (512³, best of 10), or null when not measured.</param>
/// <param name="ReportedClockGhz">/proc/cpuinfo's clock (nominal; turbo is higher), or null.</param>
/// <param name="SgemmFlopsPerCycle">
/// <see cref="SgemmGflops"/> per reported GHz. Indicative only: the real clock is unknown (turbo), and a core may
/// have one or two FMA units (<see cref="CpuIdentity.FlopsPerCycleOneUnit"/> is the one-unit figure). MKL's
/// optimised paths reach about the one-unit figure or more; its generic path stays near a quarter of it.
/// </param>
/// <param name="Explanation">One or two sentences: the path and why, and what to do if it is the generic one.</param>
public sealed record BlasReport(
    string? CpuVendor,
    string? CpuModel,
    string? VectorIsa,
    BlasPath Path,
    string? MklVersion,
    int? MklCodePath,
    bool? MklOwnVendorCheck,
    bool OverrideActive,
    string? OverrideLibrary,
    bool Reexecuted,
    string? FixLibrary,
    int Threads,
    double? SgemmGflops,
    double? ReportedClockGhz,
    double? SgemmFlopsPerCycle,
    string Explanation)
{
    /// <summary>True when the CPU is Intel's (the vendor fix is never needed there).</summary>
    public bool IsIntel => CpuVendor == MklVendorFix.IntelVendor;
}
