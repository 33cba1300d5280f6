using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

[Collection(SeededRuns.Name)] // Fused_fast_path_gradients_equal_the_reference_path builds the same layer twice from one seed
public sealed class LoraLinearTests
{
    private static LoraLinear Make(bool dora, double dropout = 0, int inF = 12, int outF = 8, ScalarType dtype = ScalarType.Float32, LoraInit init = LoraInit.Default)
    {
        var linear = nn.Linear(inF, outF, dtype: dtype);
        return new LoraLinear(linear, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = dora, LoraDropout = dropout, TargetModules = ["x"], InitLoraWeights = init });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Default_init_is_Kaiming_uniform_A_and_zero_B(bool dora)
    {
        torch.manual_seed(0);
        var layer = Make(dora, inF: 400, outF: 50);
        Assert.Equal(0, layer.LoraB.abs().max().item<float>());
        // kaiming_uniform_(a=sqrt(5)) on (r, in) is U(-1/sqrt(in), 1/sqrt(in)): variance 1/(3·in).
        var bound = 1 / System.Math.Sqrt(400);
        Assert.True(layer.LoraA.abs().max().item<float>() <= bound + 1e-7);
        Assert.InRange(layer.LoraA.var().item<float>(), 0.8 / (3 * 400), 1.2 / (3 * 400));
    }

    [Fact]
    public void Gaussian_init_has_std_one_over_r()
    {
        torch.manual_seed(0);
        var layer = Make(false, inF: 2000, init: LoraInit.Gaussian);
        Assert.InRange(layer.LoraA.std().item<float>(), 0.25 * 0.95, 0.25 * 1.05);
        Assert.Equal(0, layer.LoraB.abs().max().item<float>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dropout_applies_in_training_only(bool dora)
    {
        torch.manual_seed(5);
        var layer = Make(dora, dropout: 0.5);
        using (no_grad()) layer.LoraB.normal_();
        var x = torch.randn(64, 12);
        layer.train();
        var y1 = layer.call(x);
        var y2 = layer.call(x);
        Assert.False(y1.allclose(y2), "two training passes with dropout 0.5 should differ");
        layer.eval();
        var e1 = layer.call(x);
        Assert.True(e1.allclose(layer.call(x), rtol: 0, atol: 0), "eval mode must be deterministic");
        // In eval mode dropout is off: the output is the no-dropout formula.
        var noDrop = Make(dora, dropout: 0);
        noDrop.load_state_dict(layer.state_dict());
        noDrop.eval();
        TensorAssert.Close(noDrop.call(x), e1, 1e-5, 1e-6, "eval output with vs without dropout configured");
    }

    [Theory]
    [InlineData(true, false, true)]
    [InlineData(false, false, true)]
    [InlineData(true, true, false)]
    [InlineData(false, true, false)]
    public void Fused_fast_path_gradients_equal_the_reference_path(bool xRequiresGrad, bool freezeA, bool bias)
    {
        // DoraLinearFunction's hand-written backward against autograd over PEFT's composed ops, in float64, on a
        // 3-d input, with x and A each frozen or not (a frozen input gets no gradient, the others are unchanged).
        torch.manual_seed(5);
        var x0 = torch.randn(new long[] { 2, 3, 12 }, dtype: ScalarType.Float64);
        var g = torch.randn(new long[] { 2, 3, 8 }, dtype: ScalarType.Float64);
        var results = new List<Tensor?[]>();
        foreach (var reference in new[] { true, false })
        {
            torch.manual_seed(6);
            var linear = nn.Linear(12, 8, hasBias: bias, dtype: ScalarType.Float64);
            var layer = new LoraLinear(linear, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["x"] }) { UseReferenceDora = reference };
            using (no_grad()) layer.LoraB.normal_(0, 0.5);
            if (freezeA) layer.LoraA.requires_grad = false;
            layer.train();
            var x = x0.clone().requires_grad_(xRequiresGrad);
            var y = layer.call(x);
            y.backward(new[] { g });
            results.Add(new[] { y.detach(), x.grad, layer.LoraA.grad, layer.LoraB.grad, layer.Magnitude!.grad });
        }
        var names = new[] { "y", "grad_x", "grad_A", "grad_B", "grad_m" };
        for (var i = 0; i < names.Length; i++)
        {
            Assert.Equal(results[0][i] is null, results[1][i] is null);
            if (results[0][i] is { } expected) TensorAssert.Close(expected, results[1][i]!, 1e-12, 1e-12, names[i]);
        }
        Assert.Equal(!xRequiresGrad, results[1][1] is null);
        Assert.Equal(freezeA, results[1][2] is null);
    }

    [Fact]
    public void Base_weight_and_bias_receive_no_gradient()
    {
        var layer = Make(true);
        layer.train();
        layer.call(torch.randn(3, 12)).sum().backward();
        Assert.Null(layer.Weight.grad);
        Assert.Null(layer.Bias!.grad);
        Assert.NotNull(layer.LoraA.grad);
        Assert.NotNull(layer.Magnitude!.grad);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_zero_row_of_W_plus_sBA_gives_finite_output_and_gradients(bool reference)
    {
        // PEFT issue 2049: a zero row of the base weight (and B = 0) makes ‖W + s·B·A‖ = 0 and PEFT divides by it.
        var layer = Make(true);
        using (no_grad())
        {
            layer.Weight[2].zero_();
            layer.ResetMagnitude();
        }
        Assert.Equal(0, layer.Magnitude![2].item<float>());
        layer.UseReferenceDora = reference;
        layer.train();
        var x = torch.randn(5, 12);
        var y = layer.call(x);
        Assert.True(y.isfinite().all().item<bool>());
        // The zero row outputs exactly its bias, as the base layer does (its products and sums are all exact zeros).
        Assert.True(y[.., 2].allclose(layer.Bias![2].expand(5), rtol: 0, atol: 0));
        y.sum().backward();
        Assert.True(layer.LoraA.grad!.isfinite().all().item<bool>());
        Assert.True(layer.LoraB.grad!.isfinite().all().item<bool>());
        Assert.True(layer.Magnitude.grad!.isfinite().all().item<bool>());
        layer.Merge();
        Assert.True(layer.Weight.isfinite().all().item<bool>());
    }

    [Fact]
    public void A_bfloat16_base_keeps_magnitude_and_factors_in_float32()
    {
        var layer = Make(true, dtype: ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, layer.Weight.dtype);
        Assert.Equal(ScalarType.Float32, layer.Magnitude!.dtype);
        Assert.Equal(ScalarType.Float32, layer.LoraA.dtype);
        var x = torch.randn(4, 12).to(ScalarType.BFloat16);
        layer.train();
        var y = layer.call(x);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        y.sum().backward();
        // An update of 1e-4 relative survives in float32 (it would round away in bfloat16's 8-bit mantissa).
        using (no_grad())
        {
            var before = layer.Magnitude.clone();
            layer.Magnitude.mul_(1 + 1e-4);
            Assert.False(before.allclose(layer.Magnitude, rtol: 0, atol: 0));
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 4e-6)]
    [InlineData(ScalarType.Float64, 1e-12)]
    public void Factored_norm_matches_the_exact_norm_even_when_the_update_nearly_cancels_W(ScalarType dtype, double tol)
    {
        torch.manual_seed(9);
        var w = torch.randn(64, 96, dtype: dtype);
        var a = torch.randn(4, 96, dtype: dtype);
        var b = torch.randn(64, 4, dtype: dtype) * 0.1;
        const double s = 2.0;
        // Rows 0..7: W_i ≈ −s·(B·A)_i, so ‖W_i + s·(B·A)_i‖ is ~1e-4 of ‖W_i‖ and the factored sum cancels.
        using (no_grad())
        {
            var ba = b.matmul(a);
            w[..8] = ((-s * ba[..8]) + 1e-4 * torch.randn(8, 96, dtype: dtype) * ba[..8]).to(dtype);
        }
        // The truth: the same inputs summed in float64.
        var exact = linalg.vector_norm(w.to(ScalarType.Float64) + s * b.to(ScalarType.Float64).matmul(a.to(ScalarType.Float64)), dims: new long[] { 1 });
        var factored = DoraRowNorm.Factored(w, a, b, s).to(ScalarType.Float64);
        var relative = ((factored - exact).abs() / exact).max().item<double>();
        Assert.True(relative < tol, $"max relative error {relative:E2}");
        if (dtype != ScalarType.Float32) return;
        // Without the guard the cancelling rows are far off in float32: the case really cancels.
        var naiveSq = linalg.vector_norm(w, dims: new long[] { 1 }).square() + 2 * s * (w.matmul(a.t()) * b).sum(1) + s * s * (b.matmul(a.matmul(a.t())) * b).sum(1);
        var naive = naiveSq.clamp_min(0).sqrt().to(ScalarType.Float64);
        var naiveError = ((naive[..8] - exact[..8]).abs() / exact[..8]).max().item<double>();
        Assert.True(naiveError > 100 * tol, $"unguarded error only {naiveError:E2}");
    }

    [Fact]
    public void Eval_cache_follows_changes_to_A_and_B()
    {
        var layer = EvalDoraLayer(seed: 2);
        var x = torch.randn(3, 12);
        var y1 = layer.call(x);
        using (no_grad()) layer.LoraA.mul_(2);
        var y2 = layer.call(x);
        layer.UseReferenceDora = true;
        TensorAssert.Close(layer.call(x), y2, 1e-5, 1e-6, "cached norm after A changed");
        Assert.False(y1.allclose(y2));
    }

    [Fact]
    public void Eval_cache_is_kept_while_A_and_B_are_unchanged_and_dropped_on_a_one_ulp_change()
    {
        var layer = EvalDoraLayer(seed: 3);
        var dora = (DoraVariant)layer.Variant!;
        var first = dora.RowNorm(layer, RowNormMode.Cached);
        var again = dora.RowNorm(layer, RowNormMode.Cached);
        Assert.True(SameMemory(first, again)); // the kept tensor, not a recomputed one

        foreach (var factor in new[] { layer.LoraA, layer.LoraB })
        {
            var before = dora.RowNorm(layer, RowNormMode.Cached);
            using (no_grad()) factor[0, 0] = MathF.BitIncrement(factor[0, 0].item<float>());
            var after = dora.RowNorm(layer, RowNormMode.Cached);
            Assert.False(SameMemory(before, after));
            TensorAssert.Close(after, dora.RowNorm(layer, RowNormMode.Factored), 0, 0, "recomputed norm");
        }

        // Training mode never keeps it.
        layer.train();
        Assert.False(SameMemory(dora.RowNorm(layer, RowNormMode.Cached), dora.RowNorm(layer, RowNormMode.Cached)));
    }

    [Fact]
    public void Small_layer_inference_keeps_the_adapted_weight_until_A_B_or_m_change_by_one_ulp()
    {
        var layer = EvalDoraLayer(seed: 4);
        var cache = ((DoraLinearVariant)layer.Variant!).AdaptedWeight;
        var x = torch.randn(5, 12);
        Tensor Fused()
        {
            var dora = (DoraLinearVariant)layer.Variant!;
            dora.SmallLayerPathEnabled = false;
            try { using (no_grad()) return layer.call(x); }
            finally { dora.SmallLayerPathEnabled = true; }
        }

        Tensor y;
        using (no_grad()) y = layer.call(x);
        Assert.True(cache.IsHeld);
        TensorAssert.Close(Fused(), y, 1e-6, 1e-7, "kept W' vs the fused node");
        using (no_grad()) TensorAssert.Equal(y, layer.call(x), "second call, same kept W'");

        Assert.Equal(1, cache.Computations);

        foreach (var tensor in new Tensor[] { layer.LoraA, layer.LoraB, layer.Magnitude! })
        {
            var before = cache.Computations;
            using (no_grad())
            {
                var flat = tensor.view(-1);
                flat[0] = MathF.BitIncrement(flat[0].item<float>());
            }
            using (no_grad()) layer.call(x);
            Assert.Equal(before + 1, cache.Computations);
            using (no_grad()) tensor.mul_(1.5);
            Tensor after;
            using (no_grad()) after = layer.call(x);
            Assert.Equal(before + 2, cache.Computations);
            TensorAssert.Close(Fused(), after, 1e-6, 1e-7, "W' after a change");
        }

        // Training mode drops it; so does merging.
        layer.train();
        layer.call(x);
        Assert.False(cache.IsHeld);
        layer.eval();
        using (no_grad()) layer.call(x);
        layer.Merge();
        Assert.False(cache.IsHeld);
    }

    [Fact]
    public void Concurrent_first_inference_calls_on_one_layer_all_get_the_right_output()
    {
        // A service may run one model on several threads: the first calls race to fill the kept W' and the norm.
        const int threads = 4;
        for (var trial = 0; trial < 25; trial++)
        {
            var layer = EvalDoraLayer(seed: 100 + trial);
            var x = torch.randn(5, 12);
            var dora = (DoraLinearVariant)layer.Variant!;
            Tensor expected;
            using (no_grad())
            {
                var reference = new LoraLinear(nn.Linear(12, 8), new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["x"] });
                reference.load_state_dict(layer.state_dict());
                reference.UseReferenceDora = true;
                reference.eval();
                expected = reference.call(x);
            }
            var outputs = new Tensor?[threads];
            var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
            using var start = new Barrier(threads);
            var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    using (no_grad()) outputs[i] = layer.call(x);
                }
                catch (Exception e) { errors.Add(e); }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            Assert.Empty(errors);
            foreach (var y in outputs) TensorAssert.Close(expected, y!, 1e-5, 1e-6, $"trial {trial}: concurrent output vs PEFT's path");
            Assert.Equal(1, dora.AdaptedWeight.Computations);
        }
    }

    [Fact]
    public void Small_layer_inference_with_a_trainable_adapter_and_grad_enabled_still_trains_it()
    {
        // Eval mode is also how some users train without dropout: W' is detached, so it must not be used then.
        var layer = EvalDoraLayer(seed: 5);
        var x = torch.randn(5, 12);
        layer.call(x).square().sum().backward();
        Assert.False(((DoraLinearVariant)layer.Variant!).AdaptedWeight.IsHeld);
        foreach (var p in new[] { layer.LoraA, layer.LoraB, layer.Magnitude! })
            Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Small_layer_inference_with_a_frozen_adapter_passes_the_gradient_to_the_input()
    {
        var layer = EvalDoraLayer(seed: 6);
        foreach (var p in new[] { layer.LoraA, layer.LoraB, layer.Magnitude! }) p.requires_grad = false;
        var x = torch.randn(5, 12);
        var viaCache = x.clone().requires_grad_(true);
        layer.call(viaCache).square().sum().backward();
        Assert.True(((DoraLinearVariant)layer.Variant!).AdaptedWeight.IsHeld);

        ((DoraLinearVariant)layer.Variant!).SmallLayerPathEnabled = false;
        var viaFused = x.clone().requires_grad_(true);
        layer.call(viaFused).square().sum().backward();
        TensorAssert.Close(viaFused.grad!, viaCache.grad!, 1e-5, 1e-6, "∂x through the kept W' vs the fused node");
    }

    // A DoRA layer in eval mode whose B is not zero (so the norm depends on A and B).
    private static LoraLinear EvalDoraLayer(int seed)
    {
        torch.manual_seed(seed);
        var layer = Make(true);
        using (no_grad()) layer.LoraB.normal_();
        layer.eval();
        return layer;
    }

    // Whether two CPU tensors start at the same address (TorchSharp exposes no data_ptr; bytes spans the tensor's memory).
    private static bool SameMemory(Tensor a, Tensor b)
        => System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a.bytes), ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b.bytes));

    [Fact]
    public void Disposing_an_unloaded_adapter_without_bias_keeps_the_base_weight()
    {
        var linear = nn.Linear(4, 3, hasBias: false);
        var layer = new LoraLinear(linear, new LoraConfig { R = 2, TargetModules = ["x"] });
        var x = torch.randn(2, 4);
        var expected = linear.call(x);
        Assert.Same(linear, layer.Unload());
        layer.Dispose();
        TensorAssert.Equal(expected, linear.call(x), "base output after the adapter was disposed");
    }
}
