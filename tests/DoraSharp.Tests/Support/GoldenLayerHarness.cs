using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// The checks every golden layer case makes against PEFT's numbers (Golden/README.md), whatever the layer type: the
/// config and factors of the case, the training forward and every gradient, the eval forward, the merged weight and
/// the unmerge, each within the manifest's tolerances. The per-type tests build the layer and add their own checks
/// (the input gradient's backend, "at init the adapter equals the base layer") through the callbacks.
/// </summary>
internal static class GoldenLayerHarness
{
    /// <summary>The case's LoRA/DoRA options for a layer built directly (the target name is not used).</summary>
    public static LoraConfig Config(GoldenCase golden) => new()
    {
        R = golden.R, LoraAlpha = golden.LoraAlpha, UseRsLora = golden.UseRsLora, UseDora = golden.IsDora,
        LoraDropout = golden.DropoutP ?? 0, TargetModules = ["x"],
    };

    /// <summary>
    /// Checks the scaling, puts the case's A and B into <paramref name="layer"/> and, for DoRA, checks the initial
    /// magnitude computed from them and then loads the case's trained one. In <c>_init</c> cases the magnitude stays our
    /// own initial one (equal within tolerance, checked here) so that "DoRA at init equals the base layer bit for bit"
    /// is tested on our own numbers.
    /// </summary>
    public static void LoadFactors(GoldenCase golden, IReadOnlyDictionary<string, Tensor> t, LoraLayer layer)
    {
        Assert.Equal(golden.Scaling, layer.Scaling, 12);
        using (no_grad())
        {
            layer.LoraA.copy_(t["lora_A"]);
            layer.LoraB.copy_(t["lora_B"]);
        }
        if (!golden.IsDora) return;
        layer.ResetMagnitude();
        TensorAssert.Close(t["magnitude_init"], layer.Magnitude!, golden.Rtol, golden.Atol("magnitude_init"), "magnitude_init");
        if (!golden.Init) using (no_grad()) layer.Magnitude!.copy_(t["magnitude"]);
    }

    /// <summary>
    /// Training mode: the output for <paramref name="input"/>, then the gradients of the case's <c>grad_out</c> on the
    /// input (when it requires grad), A, B and the magnitude; the base weight and bias stay frozen.
    /// <paramref name="output"/> sees the training output before the backward.
    /// </summary>
    public static void CheckTraining(GoldenCase golden, IReadOnlyDictionary<string, Tensor> t, LoraLayer layer, Tensor input, Action<Tensor>? output = null)
    {
        var rtol = golden.Rtol;
        layer.train();
        var y = layer.call(input);
        TensorAssert.Close(t["y"], y, rtol, golden.Atol("y"), "y");
        output?.Invoke(y);
        (y * t["grad_out"]).sum().backward();
        if (input.requires_grad) TensorAssert.Close(t["grad_x"], input.grad!, rtol, golden.Atol("grad_x"), "grad_x");
        TensorAssert.Close(t["grad_lora_A"], layer.LoraA.grad!, rtol, golden.Atol("grad_lora_A"), "grad_lora_A");
        TensorAssert.Close(t["grad_lora_B"], layer.LoraB.grad!, rtol, golden.Atol("grad_lora_B"), "grad_lora_B");
        if (golden.IsDora)
            TensorAssert.Close(t["grad_magnitude"], layer.Magnitude!.grad!, rtol, golden.Atol("grad_magnitude"), "grad_magnitude");
        Assert.Null(layer.Weight.grad);
        Assert.Null(layer.Bias?.grad);
    }

    /// <summary>
    /// Eval mode, without gradients: the output (the case's <c>y_eval</c> where dropout made it differ), the merged
    /// weight and the merged layer's output, then the unmerged weight back at W. <paramref name="evalOutput"/> sees
    /// the eval output; <paramref name="merged"/> runs while the layer is merged.
    /// </summary>
    public static void CheckEvalAndMerge(GoldenCase golden, IReadOnlyDictionary<string, Tensor> t, LoraLayer layer,
        Action<Tensor>? evalOutput = null, Action? merged = null)
    {
        var rtol = golden.Rtol;
        layer.eval();
        using (no_grad())
        {
            var yEval = layer.call(t["x"]);
            var expectedEval = t.TryGetValue("y_eval", out var ye) ? ye : t["y"];
            TensorAssert.Close(expectedEval, yEval, rtol, golden.Atol(t.ContainsKey("y_eval") ? "y_eval" : "y"), "y (eval)");
            evalOutput?.Invoke(yEval);

            layer.Merge();
            TensorAssert.Close(t["merged_weight"], layer.Weight, rtol, golden.Atol("merged_weight"), "merged_weight");
            TensorAssert.Close(expectedEval, layer.call(t["x"]), rtol, golden.Atol("y"), "merged forward");
            merged?.Invoke();
            layer.Unmerge();
            TensorAssert.Close(t["W"], layer.Weight, rtol, golden.Atol("merged_weight"), "unmerged weight");
        }
    }
}
