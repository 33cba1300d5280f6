using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// One-call check of the BLAS path libtorch runs on this machine (issue 15): on a non-Intel x86 CPU, oneMKL
/// inside libtorch 2.10 takes its generic path unless the MKL vendor fix is preloaded (<see cref="MklVendorFix"/>,
/// docs/performance.md). Prints nothing; returns a <see cref="BlasReport"/>.
/// </summary>
/// <example>
/// <code>
/// var report = BlasCheck.Run();
/// if (report.Path == BlasPath.MklGeneric) Console.Error.WriteLine(report.Explanation);
/// </code>
/// </example>
public static class BlasCheck
{
    /// <summary>
    /// Loads libtorch if it is not yet loaded, reads the CPU and MKL, and with <paramref name="measureSgemm"/>
    /// times a 512×512×512 float32 product on one thread (about 0.1–0.3 s; the thread count is restored after).
    /// </summary>
    public static BlasReport Run(bool measureSgemm = true)
    {
        var vendor = CpuIdentity.Vendor;
        var mkl = NativeSymbols.ReadMkl();
        var global = NativeSymbols.GlobalVendorCheck();
        var overrideActive = global is { Result: 1 };
        var reexecuted = Environment.GetEnvironmentVariable(MklVendorFix.GuardVariable) == "1";
        var path = mkl is null ? BlasPath.NoMkl
            : mkl.CodePath is null ? BlasPath.MklUnknown
            : mkl.CodePath == 0 ? BlasPath.MklGeneric
            : BlasPath.MklOptimized;
        double? gflops = measureSgemm ? MeasureSgemmGflops() : null;
        var clock = CpuIdentity.ReportedClockGhz;
        return new BlasReport(vendor, CpuIdentity.ModelName, CpuIdentity.VectorIsa, path, mkl?.Version, mkl?.CodePath, mkl?.OwnVendorCheck,
            overrideActive, global?.Library, reexecuted, MklVendorFix.FindLibrary(), torch.get_num_threads(), gflops, clock,
            gflops is { } g && clock is { } c ? g / c : null,
            Explain(vendor, path, mkl?.CodePath, overrideActive, global?.Library));
    }

    private static string Explain(string? vendor, BlasPath path, int? codePath, bool overrideActive, string? overrideLibrary)
    {
        var intel = vendor == MklVendorFix.IntelVendor;
        var via = overrideActive ? $"the vendor fix is active ({overrideLibrary ?? "preloaded"})" : "the vendor fix is not active";
        return path switch
        {
            BlasPath.NoMkl => "libtorch has no oneMKL here: MKL's vendor check does not apply.",
            BlasPath.MklUnknown => $"oneMKL is present but its code path could not be read; {via}.",
            BlasPath.MklOptimized when intel && !overrideActive => $"oneMKL takes its optimised path (code path {codePath}): Intel CPU, the vendor fix is not needed.",
            BlasPath.MklOptimized when intel => $"oneMKL takes its optimised path (code path {codePath}); {via}, though an Intel CPU does not need it.",
            BlasPath.MklOptimized when overrideActive => $"oneMKL takes its optimised path (code path {codePath}) on this {vendor ?? "non-Intel"} CPU because {via}.",
            BlasPath.MklOptimized => $"oneMKL takes its optimised path (code path {codePath}) on this {vendor ?? "non-Intel"} CPU without the vendor fix.",
            _ when overrideActive => $"oneMKL takes its GENERIC path (code path 0) although {via}: report this (docs/performance.md).",
            _ => $"oneMKL takes its GENERIC path (code path 0) on this {vendor ?? "non-Intel"} CPU: matrix products run at about half speed or less. " +
                 $"The dora CLI fixes this by itself; in your own program preload {MklVendorFix.LibraryFileName} (LD_PRELOAD) as docs/performance.md shows.",
        };
    }

    /// <summary>Best of 10 timed 512³ float32 products on one thread after 3 warm-ups, in GFLOP/s.</summary>
    private static double MeasureSgemmGflops()
    {
        const int n = 512;
        var threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var generator = new Generator(0);
            var a = torch.rand(n, n, generator: generator);
            var b = torch.rand(n, n, generator: generator);
            for (var i = 0; i < 3; i++) torch.mm(a, b).Dispose();
            var best = double.MaxValue;
            for (var i = 0; i < 10; i++)
            {
                var watch = Stopwatch.StartNew();
                torch.mm(a, b).Dispose();
                best = System.Math.Min(best, watch.Elapsed.TotalSeconds);
            }
            return 2.0 * n * n * n / best / 1e9;
        }
        finally
        {
            torch.set_num_threads(threads);
        }
    }
}
