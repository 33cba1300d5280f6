using System.Runtime.InteropServices;
using TorchSharp;

namespace DoraSharp;

/// <summary>
/// libtorch's global switch for its oneDNN (formerly MKL-DNN) CPU kernels — what PyTorch exposes as
/// <c>torch.backends.mkldnn.enabled</c> (<c>at::Context::setUserEnabledMkldnn</c>). With it off, libtorch
/// runs float32 convolutions on its own kernels (im2col + GEMM) instead of oneDNN's.
/// TorchSharp 0.107 does not expose the switch, so it is reached through libtorch's exported C++ symbols.
/// Where they cannot be found (another libtorch build or platform), <see cref="IsAvailable"/> is false.
/// The switch is read by libtorch at every operator call, so it can be changed at any time.
/// </summary>
public static class MkldnnBackend
{
    // (at::globalContext(), Context::userEnabledMkldnn() const, Context::setUserEnabledMkldnn(bool)):
    // Itanium C++ ABI names (Linux, macOS; verified on Linux x64 with libtorch 2.10), then MSVC names
    // (Windows x64; not verified here). An MSVC name encodes the signature, so a wrong guess fails to resolve.
    private static readonly (string Context, string Get, string Set)[] Symbols =
    {
        ("_ZN2at13globalContextEv", "_ZNK2at7Context17userEnabledMkldnnEv", "_ZN2at7Context20setUserEnabledMkldnnEb"),
        ("?globalContext@at@@YAAEAVContext@1@XZ", "?userEnabledMkldnn@Context@at@@QEBA_NXZ", "?setUserEnabledMkldnn@Context@at@@QEAAX_N@Z"),
    };

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    private delegate bool GetFn(IntPtr context);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool value);

    private sealed record Api(IntPtr Context, GetFn Get, SetFn Set);

    private static readonly Lazy<Api?> _api = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when the switch was found in the loaded libtorch.</summary>
    public static bool IsAvailable => _api.Value is not null;

    /// <summary>
    /// Whether libtorch may use oneDNN kernels (libtorch's default is true).
    /// </summary>
    /// <exception cref="NotSupportedException">The switch is not reachable in this libtorch (<see cref="IsAvailable"/> is false).</exception>
    public static bool Enabled
    {
        get => Required().Get(Required().Context);
        set => Required().Set(Required().Context, value);
    }

    private static Api Required()
        => _api.Value ?? throw new NotSupportedException(
            "libtorch's oneDNN switch (at::Context::setUserEnabledMkldnn) is not exported by the loaded torch_cpu library.");

    private static Api? Load()
    {
        torch.InitializeDeviceType(DeviceType.CPU); // makes sure TorchSharp has loaded libtorch
        if (!NativeLibrary.TryLoad("torch_cpu", typeof(torch).Assembly, null, out var library)) return null;
        foreach (var (context, get, set) in Symbols)
        {
            if (NativeLibrary.TryGetExport(library, context, out var contextFn)
                && NativeLibrary.TryGetExport(library, get, out var getFn)
                && NativeLibrary.TryGetExport(library, set, out var setFn))
            {
                var ctx = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(contextFn)();
                return new Api(ctx, Marshal.GetDelegateForFunctionPointer<GetFn>(getFn), Marshal.GetDelegateForFunctionPointer<SetFn>(setFn));
            }
        }
        return null;
    }
}
