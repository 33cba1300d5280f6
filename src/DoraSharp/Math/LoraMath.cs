using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The LoRA arithmetic (Hu et al. 2021, arXiv 2106.09685) as pure tensor functions: the layers delegate here.
/// </summary>
public static class LoraMath
{
    /// <summary>
    /// The scaling s of the update s·B·A: alpha / r (PEFT's default), or alpha / sqrt(r) with rsLoRA
    /// (Kalajdzievski 2023, arXiv 2312.03732), which keeps the update's size stable as r grows.
    /// </summary>
    public static double Scaling(double loraAlpha, int r, bool useRsLora)
        => useRsLora ? loraAlpha / System.Math.Sqrt(r) : loraAlpha / r;

    /// <summary>
    /// The unscaled low-rank product B·A for a Linear layer: (out, r) @ (r, in) → (out, in).
    /// PEFT builds the same matrix as <c>lora_B(lora_A(eye)).T</c>; the plain product is the same
    /// numbers without the d_in × d_in identity.
    /// </summary>
    public static Tensor LowRankProduct(Tensor loraA, Tensor loraB) => loraB.matmul(loraA);

    /// <summary>
    /// PEFT's <c>get_delta_weight</c> for a Linear layer: ΔW = s·B·A, shape (out, in).
    /// </summary>
    public static Tensor DeltaWeight(Tensor loraA, Tensor loraB, double scaling)
        => LowRankProduct(loraA, loraB).mul_(scaling);

    /// <summary>
    /// V = W + s·B·A in one <c>addmm</c>, differentiable in every input; B is never written. s rides in addmm's alpha
    /// (one native call and backward node fewer than scaling B first), but TorchSharp passes alpha as a float: exact for
    /// float32 tensors, so a float64 weight with an s that is not a float (rsLoRA's α/√r) scales B in double instead.
    /// </summary>
    internal static Tensor AddScaledProduct(Tensor weight, Tensor loraA, Tensor loraB, double scaling)
        => (float)scaling == scaling || weight.dtype != ScalarType.Float64
            ? torch.addmm(weight, loraB, loraA, 1, (float)scaling)
            : torch.addmm(weight, loraB.mul(scaling), loraA, 1, 1);
}
