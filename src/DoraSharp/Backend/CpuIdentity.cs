using System.Runtime.Intrinsics.X86;
using System.Text;

namespace DoraSharp;

/// <summary>The CPU's vendor, model name and widest float FMA instructions, from CPUID (x86) or /proc/cpuinfo.</summary>
public static class CpuIdentity
{
    /// <summary>CPUID leaf 0's vendor string (GenuineIntel, AuthenticAMD, HygonGenuine, …); null on a non-x86 CPU.</summary>
    public static string? Vendor
    {
        get
        {
            if (!X86Base.IsSupported) return null;
            var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
            return Ascii(ebx, edx, ecx);
        }
    }

    /// <summary>The CPU's brand string (CPUID leaves 0x80000002–4), else /proc/cpuinfo's "model name", else null.</summary>
    public static string? ModelName
    {
        get
        {
            if (X86Base.IsSupported && (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax >= 0x80000004)
            {
                var parts = Enumerable.Range(0, 3).Select(i => X86Base.CpuId(unchecked((int)0x80000002) + i, 0))
                    .SelectMany(r => new[] { r.Eax, r.Ebx, r.Ecx, r.Edx }).ToArray();
                var brand = Ascii(parts).Trim('\0', ' ');
                if (brand.Length > 0) return brand;
            }
            return CpuInfoField("model name");
        }
    }

    /// <summary>
    /// The widest float32 multiply-add the CPU and OS support, as MKL's optimised paths would use it:
    /// "AVX-512", "AVX2+FMA", "AVX", "SSE" or null when not x86.
    /// </summary>
    public static string? VectorIsa =>
        !X86Base.IsSupported ? null
        : Avx512F.IsSupported ? "AVX-512"
        : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA"
        : Avx.IsSupported ? "AVX"
        : "SSE";

    /// <summary>
    /// Float32 operations per cycle and core that <see cref="VectorIsa"/> allows with ONE vector FMA unit
    /// (lanes × 2): 32 for AVX-512, 16 for AVX2+FMA, 8 for AVX (separate multiply and add), 4 for SSE. Many cores have
    /// two units (twice this); the number of units is not visible to software, so this is the floor of the peak.
    /// </summary>
    public static int? FlopsPerCycleOneUnit => VectorIsa switch
    {
        "AVX-512" => 32,
        "AVX2+FMA" => 16,
        "AVX" => 8,
        "SSE" => 4,
        _ => null,
    };

    /// <summary>/proc/cpuinfo's "cpu MHz" of the first CPU in GHz: the nominal or current clock, not the turbo clock; null when unknown.</summary>
    public static double? ReportedClockGhz =>
        double.TryParse(CpuInfoField("cpu MHz"), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var mhz) && mhz > 0
            ? mhz / 1000 : null;

    private static string? CpuInfoField(string name)
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && line[..colon].Trim() == name) return line[(colon + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    private static string Ascii(params int[] registers)
    {
        var bytes = registers.SelectMany(BitConverter.GetBytes).ToArray();
        return Encoding.ASCII.GetString(bytes);
    }
}
