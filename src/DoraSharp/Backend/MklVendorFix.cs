using System.Reflection;

namespace DoraSharp;

/// <summary>How <see cref="MklVendorFix.SwitchVariable"/> asks the vendor fix to behave.</summary>
public enum MklVendorFixMode
{
    /// <summary>Unset, <c>1</c>, <c>on</c>, <c>auto</c>: apply the fix where it is needed (a non-Intel x86 CPU with MKL).</summary>
    Auto,

    /// <summary><c>0</c>, <c>off</c>: never apply it.</summary>
    Off,

    /// <summary><c>force</c>: apply it even where it is not needed (an Intel CPU); for testing the mechanism.</summary>
    Force,
}

/// <summary>Whether a process should re-execute itself with the vendor fix preloaded, and why.</summary>
/// <param name="Reexecute">True when the process should replace itself with a copy that has the fix in LD_PRELOAD.</param>
/// <param name="Reason">One sentence for `dora doctor` and `dora --version`.</param>
public sealed record MklVendorFixDecision(bool Reexecute, string Reason);

/// <summary>
/// oneMKL, linked into libtorch 2.10's libtorch_cpu.so, takes a generic code path on non-Intel CPUs: it asks
/// <c>mkl_serv_intel_cpu_true()</c> before choosing its AVX2/AVX-512 kernels. The fix is a shared object that
/// defines that function to return 1 (native/mkl-vendor-fix/mkl_vendor_fix.c); preloaded (LD_PRELOAD) it
/// takes precedence over MKL's own, and MKL chooses by instruction set alone. A preload must be in place when the
/// process starts, so a program applies it by re-executing itself (<see cref="ReexecuteIfNeeded"/>), as the
/// <c>dora</c> CLI does. See docs/performance.md.
/// </summary>
public static class MklVendorFix
{
    /// <summary><c>0</c>/<c>off</c> turns the fix off, <c>force</c> applies it even on Intel; unset or <c>1</c> is automatic.</summary>
    public const string SwitchVariable = "DORASHARP_MKL_VENDOR_FIX";

    /// <summary>Set to <c>1</c> in the re-executed process, so that it never re-executes again (loop guard).</summary>
    public const string GuardVariable = "DORASHARP_MKL_VENDOR_FIX_REEXECUTED";

    /// <summary>The fix's file name, wherever it is built.</summary>
    public const string LibraryFileName = "libdorasharp_mkl_vendor_fix.so";

    /// <summary>
    /// Where scripts/setup-native.sh builds the fix: <c>$XDG_CACHE_HOME/dorasharp/native/</c>, or
    /// <c>~/.cache/dorasharp/native/</c> when XDG_CACHE_HOME is unset.
    /// </summary>
    public static string CachePath
    {
        get
        {
            var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(cache)) cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(cache, "dorasharp", "native", LibraryFileName);
        }
    }

    /// <summary>
    /// The places searched for the fix, in order: <c>runtimes/linux-x64/native/</c> under the application's
    /// directory (the dora CLI's build compiles it there, and its tool package ships it), the same under this
    /// library's directory, then <see cref="CachePath"/>.
    /// </summary>
    public static IReadOnlyList<string> SearchPaths()
    {
        var native = Path.Combine("runtimes", "linux-x64", "native", LibraryFileName);
        var dirs = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(MklVendorFix).Assembly.Location) }
            .Where(d => !string.IsNullOrEmpty(d)).Distinct();
        return dirs.Select(d => Path.Combine(d!, native)).Append(CachePath).ToList();
    }

    /// <summary>The first of <see cref="SearchPaths"/> that exists, or null.</summary>
    public static string? FindLibrary() => SearchPaths().FirstOrDefault(File.Exists);

    /// <summary>Reads <see cref="SwitchVariable"/>'s <paramref name="value"/> (null when unset).</summary>
    /// <exception cref="ArgumentException">The value is none of the accepted spellings.</exception>
    public static MklVendorFixMode ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "1" or "on" or "true" or "yes" or "auto" => MklVendorFixMode.Auto,
        "0" or "off" or "false" or "no" => MklVendorFixMode.Off,
        "force" => MklVendorFixMode.Force,
        _ => throw new ArgumentException(
            $"{SwitchVariable}='{value}' is not one of 0 (off), 1 (automatic, the default) or force."),
    };

    /// <summary>
    /// The re-execution decision, a pure function of what the process knows at start.
    /// </summary>
    /// <param name="vendor">The CPU vendor (CPUID leaf 0), e.g. GenuineIntel, AuthenticAMD; null when not x86.</param>
    /// <param name="mode">From <see cref="SwitchVariable"/>.</param>
    /// <param name="overrideActive">The fix (or another override of the vendor check) already resolves in this process.</param>
    /// <param name="reexecuted"><see cref="GuardVariable"/> is set: this process is already the re-executed one.</param>
    /// <param name="mklPresent">Whether libtorch has MKL; asked only when the answer matters (it loads libtorch).</param>
    /// <param name="library">The fix found on disk (<see cref="FindLibrary"/>), or null.</param>
    public static MklVendorFixDecision Decide(string? vendor, MklVendorFixMode mode, bool overrideActive, bool reexecuted,
        Func<bool> mklPresent, string? library)
    {
        ArgumentNullException.ThrowIfNull(mklPresent);
        if (mode == MklVendorFixMode.Off) return new(false, $"the vendor fix is turned off ({SwitchVariable}=0).");
        if (overrideActive) return new(false, "the vendor fix is active (preloaded).");
        if (reexecuted)
            return new(false, $"this process was re-executed with the vendor fix ({GuardVariable}=1) but the override does not resolve; not trying again.");
        if (mode == MklVendorFixMode.Auto)
        {
            if (vendor is null) return new(false, "not an x86 CPU: MKL's vendor check does not apply.");
            if (vendor == IntelVendor) return new(false, "Intel CPU: the vendor fix is not needed.");
        }
        if (library is null)
            return new(false, $"the vendor fix library ({LibraryFileName}) was not found (run scripts/setup-native.sh); MKL stays on its generic path.");
        if (mode == MklVendorFixMode.Force) return new(true, $"re-executing with the vendor fix preloaded, forced by {SwitchVariable}=force.");
        if (!mklPresent()) return new(false, "libtorch has no MKL: the vendor fix does not apply.");
        return new(true, $"{vendor} CPU with MKL: re-executing with the vendor fix preloaded, so MKL takes its optimised path.");
    }

    /// <summary>CPUID's vendor string of Intel CPUs.</summary>
    public const string IntelVendor = "GenuineIntel";

    /// <summary>
    /// Applies the fix to the running program: when <see cref="Decide"/> says so, replaces the process (execve)
    /// with the same program and <paramref name="args"/>, with the fix prepended to LD_PRELOAD and
    /// <see cref="GuardVariable"/> set. Call it first thing in <c>Main</c>, before anything else runs: on
    /// success it does not return. Returns the decision when the process goes on as it is (including when
    /// execve failed, said in the reason). Does nothing but decide on other platforms than Linux.
    /// </summary>
    /// <param name="args">The program's arguments (after its name).</param>
    public static MklVendorFixDecision ReexecuteIfNeeded(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var decision = CurrentDecision();
        if (!decision.Reexecute) return decision;
        var library = FindLibrary()!;
        var (program, argv) = CurrentCommandLine(args);
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
        environment["LD_PRELOAD"] = environment.TryGetValue("LD_PRELOAD", out var preload) && preload.Length > 0 ? $"{library}:{preload}" : library;
        environment[GuardVariable] = "1";
        var errno = NativeSymbols.ReplaceProcess(program, argv, environment.Select(e => $"{e.Key}={e.Value}").ToList());
        return new(false, $"re-executing with the vendor fix failed (execve errno {errno}); MKL stays on its generic path.");
    }

    /// <summary>The decision for this process now (reads the CPU, the environment and, if it matters, libtorch).</summary>
    public static MklVendorFixDecision CurrentDecision()
    {
        if (!OperatingSystem.IsLinux()) return new(false, "not Linux: the vendor fix is built for Linux x64 only.");
        return Decide(CpuIdentity.Vendor, ParseMode(Environment.GetEnvironmentVariable(SwitchVariable)), OverrideActive(),
            Environment.GetEnvironmentVariable(GuardVariable) == "1", () => NativeSymbols.ReadMkl() is not null, FindLibrary());
    }

    /// <summary>True when <c>mkl_serv_intel_cpu_true</c> resolves globally to a function returning 1 (a preloaded override).</summary>
    internal static bool OverrideActive() => NativeSymbols.GlobalVendorCheck() is { Result: 1 };

    /// <summary>The program to execute and its argv: the apphost, or `dotnet` with the entry assembly.</summary>
    private static (string Program, List<string> Argv) CurrentCommandLine(string[] args)
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("MklVendorFix: the process path is unknown.");
        var argv = new List<string> { process };
        if (Path.GetFileNameWithoutExtension(process) == "dotnet" && Assembly.GetEntryAssembly()?.Location is { Length: > 0 } entry)
            argv.Add(entry);
        argv.AddRange(args);
        return (process, argv);
    }
}
