using System.Runtime.InteropServices;
using TorchSharp;

namespace DoraSharp;

/// <summary>
/// Every native symbol the BLAS check and the MKL vendor fix use, in one place (issue 15): oneMKL's service
/// functions that libtorch_cpu.so exports (MKL is linked into it), the process-wide resolution of
/// <c>mkl_serv_intel_cpu_true</c> (what MKL's own calls bind to), and libc's <c>dladdr</c> and <c>execve</c>.
/// Nothing here throws for a missing symbol: callers get null or false and report "unknown".
/// </summary>
internal static class NativeBlas
{
    /// <summary>The MKL function the vendor fix overrides (native/mkl-vendor-fix/mkl_vendor_fix.c).</summary>
    public const string VendorCheckSymbol = "mkl_serv_intel_cpu_true";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int IntFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void VersionStringFn(IntPtr buffer, int length);

    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public IntPtr FileName, FileBase, SymbolName, SymbolAddress;
    }

    [DllImport("libc.so.6", EntryPoint = "dladdr")]
    private static extern int DlAddr(IntPtr address, out DlInfo info);

    [DllImport("libc.so.6", EntryPoint = "execve", SetLastError = true)]
    private static extern int ExecVe(string path, string?[] argv, string?[] envp);

    /// <summary>What libtorch's MKL says about itself; null fields where a symbol is missing.</summary>
    public sealed record MklFacts(string? Version, int? CodePath, bool? OwnVendorCheck);

    /// <summary>
    /// Loads libtorch (through TorchSharp) and reads MKL's facts from libtorch_cpu, or null when that library
    /// has no MKL (another libtorch build, macOS/Windows names, an ARM build).
    /// </summary>
    public static MklFacts? ReadMkl()
    {
        torch.InitializeDeviceType(DeviceType.CPU);   // makes sure TorchSharp has loaded libtorch
        if (!NativeLibrary.TryLoad("torch_cpu", typeof(torch).Assembly, null, out var library)) return null;
        if (!NativeLibrary.TryGetExport(library, VendorCheckSymbol, out var ownCheck)) return null;
        string? version = null;
        if (NativeLibrary.TryGetExport(library, "MKL_Get_Version_String", out var versionFn))
        {
            var buffer = Marshal.AllocHGlobal(512);
            try
            {
                Marshal.GetDelegateForFunctionPointer<VersionStringFn>(versionFn)(buffer, 512);
                version = Marshal.PtrToStringAnsi(buffer)?.Trim();
            }
            finally
            {
                Marshal.FreeHGlobal(buffer);
            }
        }
        // mkl_serv_cpu_detect is the code path MKL dispatches its kernels to; it calls the vendor check through
        // the PLT, so it sees the override when one is preloaded. 0 is the generic path.
        int? codePath = NativeLibrary.TryGetExport(library, "mkl_serv_cpu_detect", out var detect)
            ? Marshal.GetDelegateForFunctionPointer<IntFn>(detect)() : null;
        // MKL's own vendor check called directly (not through the PLT): the CPU as MKL sees it unaided.
        var own = Marshal.GetDelegateForFunctionPointer<IntFn>(ownCheck)() != 0;
        return new MklFacts(version, codePath, own);
    }

    /// <summary>
    /// Where <c>mkl_serv_intel_cpu_true</c> resolves in the process's global scope (the executable, its
    /// dependencies and LD_PRELOAD libraries; TorchSharp loads libtorch locally, so libtorch's own definition
    /// is not there), and what it returns; null when nothing global defines it (no override).
    /// </summary>
    public static (string? Library, int Result)? GlobalVendorCheck()
    {
        if (!OperatingSystem.IsLinux()) return null;
        if (!NativeLibrary.TryGetExport(NativeLibrary.GetMainProgramHandle(), VendorCheckSymbol, out var address)) return null;
        string? file = null;
        try
        {
            if (DlAddr(address, out var info) != 0 && info.FileName != IntPtr.Zero) file = Marshal.PtrToStringAnsi(info.FileName);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return (file, Marshal.GetDelegateForFunctionPointer<IntFn>(address)());
    }

    /// <summary>
    /// Replaces the running process with <paramref name="path"/> <paramref name="arguments"/> (argv[0] first)
    /// and <paramref name="environment"/> (NAME=value entries). Returns only on failure, with errno.
    /// </summary>
    public static int ReplaceProcess(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment)
    {
        var argv = arguments.Cast<string?>().Append(null).ToArray();
        var envp = environment.Cast<string?>().Append(null).ToArray();
        ExecVe(path, argv, envp);
        return Marshal.GetLastPInvokeError();
    }
}
