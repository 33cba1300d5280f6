using System.Text;

namespace DoraSharp.Cli;

/// <summary>
/// Explains a failure to load TorchSharp's native library (libtorch 2.10) in words a user can act on, wherever
/// `dora` runs from (the repository, or an installed tool that has no scripts beside it). TorchSharp reports any
/// load failure as a <see cref="NotSupportedException"/> saying the runtime package is missing, with the loader's
/// trace appended; on Linux the usual real cause is a libstdc++ older than GCC 13's, which lacks the symbol
/// version libtorch 2.10 is linked against (scripts/setup-native.sh checks for the same symbol).
/// </summary>
internal static class NativeRuntime
{
    /// <summary>The symbol version libtorch 2.10 (built with GCC 13) needs from libstdc++.</summary>
    public const string NeededSymbol = "GLIBCXX_3.4.32";

    /// <summary>Where Linux distributions put the 64-bit libstdc++ (Debian/Ubuntu, then Fedora/RHEL, then others).</summary>
    public static readonly IReadOnlyList<string> LibstdcxxCandidates =
    [
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6",
    ];

    /// <summary>True when <paramref name="e"/> or one of its inner exceptions is TorchSharp failing to load libtorch.</summary>
    public static bool IsLoadFailure(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is DllNotFoundException && inner.Message.Contains("torch", StringComparison.OrdinalIgnoreCase)
                || inner is NotSupportedException && inner.Message.Contains("TorchSharp", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The lines to print for a load failure: the cause when it can be named (a libstdc++ without
    /// <see cref="NeededSymbol"/>), then what to do, then TorchSharp's own first line.
    /// </summary>
    /// <param name="e">The exception caught (see <see cref="IsLoadFailure"/>).</param>
    /// <param name="libstdcxx">The libstdc++ file to inspect; null to look in <see cref="LibstdcxxCandidates"/> (Linux only).</param>
    public static string Explain(Exception e, string? libstdcxx = null)
    {
        var message = new StringBuilder("dora: TorchSharp's native library (libtorch 2.10) could not be loaded.");
        libstdcxx ??= OperatingSystem.IsLinux() ? LibstdcxxCandidates.FirstOrDefault(File.Exists) : null;
        if (libstdcxx is not null && !HasSymbol(libstdcxx))
        {
            message.Append($" The machine's libstdc++ ({libstdcxx}) lacks {NeededSymbol}, which libtorch 2.10 needs:")
                .Append(" install a libstdc++ from GCC 13 or newer (Debian 13, Ubuntu 24.04, Fedora 39 and later have one;")
                .Append(" on Debian 12, as root: add Debian 13 (trixie) to apt's sources and run 'apt-get install -t trixie libstdc++6',")
                .Append(" which DoraSharp's scripts/setup-native.sh does with a pin so nothing else is upgraded).");
        }
        else
        {
            message.Append(" The tool package carries libtorch for linux-x64, win-x64 and osx-arm64;")
                .Append(" reinstall it ('dotnet tool update dora') or check that this platform is one of these.");
        }
        // TorchSharp's first line, plus the loader's own lines that name the cause (a missing file or symbol
        // version); its full trace is long and mostly lists the folders it tried.
        var lines = Innermost(e).Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        message.AppendLine().Append($"dora: TorchSharp said: {lines.FirstOrDefault()}");
        foreach (var line in lines.Skip(1).Where(l => l.Contains("GLIBCXX", StringComparison.Ordinal)
                     || l.Contains("cannot open shared object", StringComparison.Ordinal)).Distinct().Take(3))
        {
            message.AppendLine().Append($"dora:   {line}");
        }
        return message.ToString();
    }

    /// <summary>Whether the library file contains the symbol version's name (as scripts/setup-native.sh checks with grep).</summary>
    internal static bool HasSymbol(string path)
    {
        try
        {
            var bytes = File.ReadAllBytes(path);
            return bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(NeededSymbol)) >= 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true;   // unreadable: do not blame it
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }
}
