namespace DoraSharp;

/// <summary>
/// libtorch's global switch for its oneDNN (formerly MKL-DNN) CPU kernels — what PyTorch exposes as
/// <c>torch.backends.mkldnn.enabled</c> (<c>at::Context::setUserEnabledMkldnn</c>). With it off, libtorch
/// runs float32 convolutions on its own kernels (im2col + GEMM) instead of oneDNN's.
/// TorchSharp 0.107 does not expose the switch, so it is reached through libtorch's exported C++ symbols
/// (<see cref="NativeSymbols.FindMkldnnSwitch"/>).
/// Where they cannot be found (another libtorch build or platform), <see cref="IsAvailable"/> is false.
/// The switch is read by libtorch at every operator call, so it can be changed at any time.
/// </summary>
public static class MkldnnBackend
{
    private static readonly Lazy<NativeSymbols.MkldnnSwitch?> _api = new(NativeSymbols.FindMkldnnSwitch, LazyThreadSafetyMode.ExecutionAndPublication);

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

    private static NativeSymbols.MkldnnSwitch Required()
        => _api.Value ?? throw new NotSupportedException(
            "libtorch's oneDNN switch (at::Context::setUserEnabledMkldnn) is not exported by the loaded torch_cpu library.");
}
