using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// The Linear golden cases computed by PEFT (Golden/README.md): forward output, every gradient, the initial
/// magnitude and the merged weight, within the manifest's tolerances, through both DoRA paths.
/// Also runs the cases of any directory named by DORA_GOLDEN_DIR.
/// </summary>
public sealed class LoraLinearGoldenTests
{
    public static TheoryData<string, string> LinearCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (key, c) in GoldenCase.All().Where(c => c.Case.Layer == "linear"))
        {
            data.Add(key, "fast");
            if (c.IsDora) data.Add(key, "reference");
            // Small layers train through LoraLinear's small-layer forward; "fused" keeps the fused node tested on them too.
            if (c.IsDora) data.Add(key, "fused");
        }
        // A named directory without cases is a mistake (a typo, an empty copy): fail rather than pass vacuously.
        var extra = Environment.GetEnvironmentVariable("DORA_GOLDEN_DIR");
        if (!string.IsNullOrEmpty(extra) && GoldenCase.LoadManifest(extra).Count == 0)
            data.Add("DORA_GOLDEN_DIR:(no cases)", "fast");
        return data;
    }

    [Theory]
    [MemberData(nameof(LinearCases))]
    public void Linear_case_matches_PEFT(string caseKey, string path)
    {
        var golden = GoldenCase.ByKey(caseKey);
        using var scope = NewDisposeScope();
        var t = golden.LoadTensors();

        var linear = nn.Linear(golden.InFeatures, golden.OutFeatures, hasBias: golden.HasBias, dtype: golden.DType);
        using (no_grad())
        {
            linear.weight!.copy_(t["W"]);
            if (golden.HasBias) linear.bias!.copy_(t["bias"]);
        }
        var layer = new LoraLinear(linear, GoldenLayerHarness.Config(golden)) { UseReferenceDora = path == "reference" };
        if (layer.Variant is DoraLinearVariant dora) dora.SmallLayerPathEnabled = path != "fused";
        GoldenLayerHarness.LoadFactors(golden, t, layer);
        if (t.TryGetValue("dropout_mask", out var mask)) layer.DropoutOverride = x => x.mul(mask);

        GoldenLayerHarness.CheckTraining(golden, t, layer, t["x"].clone().requires_grad_(true));
        GoldenLayerHarness.CheckEvalAndMerge(golden, t, layer,
            evalOutput: yEval => { if (golden.Init) AssertInitEqualsBase(layer, linear, t["x"], yEval, path); },
            merged: () =>
            {
                if (!golden.Init) return;
                // Merging at init multiplies W + s·B·A = W + 0 by m/n = 1: the base weight itself, so the merged layer
                // runs the base's own F.linear on the same tensors.
                TensorAssert.Equal(t["W"], layer.Weight.detach(), "merged weight at init vs W");
                TensorAssert.Equal(F(linear, t["x"]), layer.call(t["x"]), "merged output at init vs base");
            });
    }

    private static Tensor F(Linear linear, Tensor x) => nn.functional.linear(x, linear.weight!, linear.bias);

    /// <summary>
    /// "At initialisation the DoRA (or LoRA) layer equals the base layer", said precisely (issue 13). B = 0, so
    /// s·B·A·x = 0 exactly; the magnitude m was initialised to the norm n that the forward divides by, computed by the
    /// same operations on the same W, A and B, so m == n and m/n == 1 exactly. Then the LoRA and the reference DoRA
    /// paths compute the base's own F.linear plus exact zeros, and equal it bit for bit, as do disabled adapters. The
    /// fast DoRA path computes (m/n)·(x·Wᵀ + s·x·Aᵀ·Bᵀ) + bias, a GEMM without bias then addcmul(bias, ·, m/n), where
    /// the base runs addmm(bias, x, Wᵀ): the same value in exact arithmetic, rounded in another order by other CPUs'
    /// kernels (1 ulp apart on an AMD Zen 5). It must agree within a few ulps of the terms' magnitude.
    /// </summary>
    private static void AssertInitEqualsBase(LoraLinear layer, Linear linear, Tensor x, Tensor yEval, string path)
    {
        var baseOut = F(linear, x);
        Assert.Equal(0, layer.LoraB.abs().max().to(ScalarType.Float64).item<double>());
        if (layer.UseDora)
        {
            var m = layer.Magnitude!.detach();
            var n = ((DoraVariant)layer.Variant!).RowNorm(layer, path == "reference" ? RowNormMode.Reference : RowNormMode.Factored);
            TensorAssert.Equal(m, n, "magnitude m vs the forward's norm n at init");
            TensorAssert.Equal(ones_like(m), DoraMath.MagnitudeScale(m, n), "m/n at init");
        }
        if (path == "reference" || !layer.UseDora)
            TensorAssert.Equal(baseOut, yEval, "init output vs base");
        else
            TensorAssert.WithinUlps(baseOut, yEval, TensorAssert.LinearTermScale(x, linear.weight!, linear.bias), 4, "init output (fast DoRA path) vs base");
        layer.AdapterEnabled = false;
        try { TensorAssert.Equal(baseOut, layer.call(x), "disabled adapter vs base"); }
        finally { layer.AdapterEnabled = true; }
    }

    [Fact]
    public void Built_in_golden_directory_holds_the_linear_cases()
    {
        var cases = GoldenCase.LoadManifest(GoldenCase.BuiltInDirectory);
        Assert.Equal(25, cases.Count);
        Assert.Equal(16, cases.Count(c => c.Layer == "linear"));
    }
}
