using System.Runtime.InteropServices;
using TorchSharp;

namespace DoraSharp;

/// <summary>
/// Every native symbol DoraSharp uses, in one place (issues 14 and 15; TorchSharp's private managed fields are in
/// <see cref="TorchSharpInternals"/>): libtorch's oneDNN switch (<c>at::Context::setUserEnabledMkldnn</c>, which
/// TorchSharp 0.107 does not expose), oneMKL's service functions that libtorch_cpu.so exports (MKL is linked into it),
/// the process-wide resolution of <c>mkl_serv_intel_cpu_true</c> (what MKL's own calls bind to), and libc's
/// <c>dladdr</c> and <c>execve</c>. Nothing here throws for a missing symbol: these are optional features, so callers
/// get null or false and report "unavailable" or "unknown".
/// </summary>
internal static class NativeSymbols
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

    // (at::globalContext(), Context::userEnabledMkldnn() const, Context::setUserEnabledMkldnn(bool)):
    // Itanium C++ ABI names (Linux, macOS; verified on Linux x64 with libtorch 2.10), then MSVC names
    // (Windows x64; not verified here). An MSVC name encodes the signature, so a wrong guess fails to resolve.
    private static readonly (string Context, string Get, string Set)[] MkldnnSymbols =
    {
        ("_ZN2at13globalContextEv", "_ZNK2at7Context17userEnabledMkldnnEv", "_ZN2at7Context20setUserEnabledMkldnnEb"),
        ("?globalContext@at@@YAAEAVContext@1@XZ", "?userEnabledMkldnn@Context@at@@QEBA_NXZ", "?setUserEnabledMkldnn@Context@at@@QEAAX_N@Z"),
    };

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    /// <summary>Reads libtorch's oneDNN switch of the context it is bound to.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    public delegate bool MkldnnGetFn(IntPtr context);

    /// <summary>Sets libtorch's oneDNN switch of the context it is bound to.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    public delegate void MkldnnSetFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);

    /// <summary>libtorch's global context and its oneDNN switch's getter and setter.</summary>
    public sealed record MkldnnSwitch(IntPtr Context, MkldnnGetFn Get, MkldnnSetFn Set);

    /// <summary>Finds the oneDNN switch in the loaded libtorch, or null where its symbols are not exported.</summary>
    public static MkldnnSwitch? FindMkldnnSwitch()
    {
        if (!TryLoadTorchCpu(out var library)) return null;
        foreach (var (context, get, set) in MkldnnSymbols)
        {
            if (NativeLibrary.TryGetExport(library, context, out var contextFn)
                && NativeLibrary.TryGetExport(library, get, out var getFn)
                && NativeLibrary.TryGetExport(library, set, out var setFn))
            {
                var ctx = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(contextFn)();
                return new MkldnnSwitch(ctx, Marshal.GetDelegateForFunctionPointer<MkldnnGetFn>(getFn), Marshal.GetDelegateForFunctionPointer<MkldnnSetFn>(setFn));
            }
        }
        return null;
    }

    // libtorch_cpu, loaded by TorchSharp (through which its native code is found).
    private static bool TryLoadTorchCpu(out IntPtr library)
    {
        torch.InitializeDeviceType(DeviceType.CPU);   // makes sure TorchSharp has loaded libtorch
        return NativeLibrary.TryLoad("torch_cpu", typeof(torch).Assembly, null, out library);
    }

    /// <summary>What libtorch's MKL says about itself; null fields where a symbol is missing.</summary>
    public sealed record MklFacts(string? Version, int? CodePath, bool? OwnVendorCheck);

    /// <summary>
    /// Loads libtorch (through TorchSharp) and reads MKL's facts from libtorch_cpu, or null when that library
    /// has no MKL (another libtorch build, macOS/Windows names, an ARM build).
    /// </summary>
    public static MklFacts? ReadMkl()
    {
        if (!TryLoadTorchCpu(out var library)) return null;
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
