using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

public sealed class LoraEmbeddingTests
{
    private static LoraConfig Config(bool dora, double dropout = 0, LoraInit init = LoraInit.Default)
        => new() { R = 4, LoraAlpha = 8, UseDora = dora, LoraDropout = dropout, TargetModules = ["x"], InitLoraWeights = init };

    /// <summary>Gives A, B (and, for DoRA, m) values, as after training: at init A = 0 and the adapter is silent.</summary>
    private static void Train(LoraEmbedding layer, long seed = 3)
    {
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        layer.LoraA.copy_(randn(layer.LoraA.shape, generator: g) * 0.3);
        layer.LoraB.copy_(randn(layer.LoraB.shape, generator: g) * 0.3);
        if (layer.UseDora) layer.ResetMagnitude();
        layer.Magnitude?.mul_(rand(layer.Magnitude.shape, generator: g) * 0.4 + 0.8);
    }

    [Theory]
    [InlineData(false, LoraInit.Default)]
    [InlineData(true, LoraInit.Default)]
    [InlineData(false, LoraInit.Gaussian)]
    public void Init_is_zero_A_and_standard_normal_B_so_the_layer_starts_as_the_base(bool dora, LoraInit init)
    {
        torch.manual_seed(0);
        var embedding = nn.Embedding(300, 64);
        var layer = new LoraEmbedding(embedding, Config(dora, init: init));
        Assert.Equal(0, layer.LoraA.abs().max().item<float>());
        // PEFT: nn.init.normal_(lora_embedding_B), std 1, for every init scheme (its "gaussian" only reaches lora_A modules).
        Assert.InRange(layer.LoraB.std().item<float>(), 0.85, 1.15);
        Assert.InRange(layer.LoraB.mean().item<float>(), -0.15, 0.15);
        var x = randint(0, 300, new long[] { 4, 9 }, dtype: ScalarType.Int64);
        layer.train();
        // Bit for bit on any CPU: a gather, a LoRA term that is exactly 0 (A = 0), and for DoRA a product with m/n == 1.
        TensorAssert.Equal(embedding.call(x), layer.call(x), "train output at init vs base");
        layer.eval();
        TensorAssert.Equal(embedding.call(x), layer.call(x), "eval output at init vs base");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void State_dict_has_PEFTs_keys_and_shapes(bool dora)
    {
        var layer = new LoraEmbedding(nn.Embedding(30, 12), Config(dora));
        var sd = layer.state_dict();
        var expected = new Dictionary<string, long[]>
        {
            ["weight"] = new long[] { 30, 12 },
            ["lora_embedding_A"] = new long[] { 4, 30 },
            ["lora_embedding_B"] = new long[] { 12, 4 },
        };
        if (dora) expected["lora_magnitude_vector"] = new long[] { 12 };
        Assert.Equal(expected.Keys.Order(), sd.Keys.Order());
        foreach (var (k, shape) in expected) Assert.Equal(shape, sd[k].shape);
        Assert.Equal(expected.Count - 1, layer.AdapterParameters().Count());
        Assert.False(layer.Weight.requires_grad);
    }

    [Fact]
    public void The_forward_pass_is_PEFTs_formula()
    {
        torch.manual_seed(1);
        var embedding = nn.Embedding(25, 6, dtype: ScalarType.Float64);
        var lora = new LoraEmbedding(embedding, Config(false));
        var dora = new LoraEmbedding(embedding, Config(true));
        Train(lora);
        Train(dora);
        var x = randint(0, 25, new long[] { 3, 5 }, dtype: ScalarType.Int64);
        var w = embedding.weight!;
        // A lookup M[x] written as one_hot(x) @ M, independent of the layer's index_select.
        var onehot = nn.functional.one_hot(x, 25).to(ScalarType.Float64);            // (3, 5, 25)
        // LoRA: W[x] + s·(Aᵀ[x] @ Bᵀ)
        var loraOut = onehot.matmul(lora.LoraA.t()).matmul(lora.LoraB.t());
        TensorAssert.Close(onehot.matmul(w) + 2.0 * loraOut, lora.call(x), 1e-12, 1e-12, "LoRA");
        // DoRA: (m/n)·(W[x] + s·(Aᵀ[x] @ Bᵀ)), n per embedding dimension over the vocabulary.
        var doraOut = onehot.matmul(dora.LoraA.t()).matmul(dora.LoraB.t());
        var n = (w + 2.0 * dora.LoraB.matmul(dora.LoraA).t()).pow(2).sum(dim: 0).sqrt();
        TensorAssert.Close((dora.Magnitude! / n) * (onehot.matmul(w) + 2.0 * doraOut), dora.call(x), 1e-12, 1e-12, "DoRA");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Padding_idx_lookups_give_lora_embedding_A_no_gradient(bool dora)
    {
        torch.manual_seed(2);
        var padded = nn.Embedding(10, 4, padding_idx: 2, dtype: ScalarType.Float64);
        var plain = nn.Embedding(10, 4, dtype: ScalarType.Float64);
        using (no_grad()) plain.weight!.copy_(padded.weight!);
        var a = new LoraEmbedding(padded, Config(dora));
        var b = new LoraEmbedding(plain, Config(dora));
        Assert.Equal(2L, a.Options.PaddingIdx);
        Assert.Null(b.Options.PaddingIdx);
        Train(a);
        b.load_state_dict(a.state_dict());
        var x = tensor(new long[] { 2, 0, 2, 5, 9, 2, 1 });
        var grad = randn(7, 4, dtype: ScalarType.Float64);
        var ya = a.call(x);
        var yb = b.call(x);
        // F.embedding's padding_idx changes the gradient only: the padding row is still looked up.
        TensorAssert.Close(yb, ya, 0, 0, "forward with and without padding_idx");
        ya.mul(grad).sum().backward();
        yb.mul(grad).sum().backward();
        Assert.Equal(0, a.LoraA.grad![.., 2].abs().max().item<double>());
        Assert.True(b.LoraA.grad![.., 2].abs().max().item<double>() > 0);
        var expected = b.LoraA.grad!.clone();
        expected[.., 2] = zeros(4, dtype: ScalarType.Float64);
        TensorAssert.Close(expected, a.LoraA.grad!, 1e-12, 1e-14, "grad lora_embedding_A");
        // lora_embedding_B and the magnitude still learn from the padding positions' outputs, as in PEFT.
        TensorAssert.Close(b.LoraB.grad!, a.LoraB.grad!, 1e-12, 1e-14, "grad lora_embedding_B");
    }

    [Fact]
    public void Probing_the_options_leaves_the_base_embedding_as_it_was()
    {
        torch.manual_seed(4);
        var embedding = nn.Embedding(12, 5, padding_idx: 0);
        var weight = embedding.get_parameter("weight")!;
        var before = weight.detach().clone();
        var x = tensor(new long[] { 0, 3, 11 });
        var yBefore = embedding.call(x).detach().clone();
        var layer = new LoraEmbedding(embedding, Config(true));
        Assert.Same(weight, embedding.get_parameter("weight"));
        Assert.Same(weight, layer.Weight);
        TensorAssert.Equal(before, weight.detach(), "base weight");
        TensorAssert.Equal(yBefore, embedding.call(x), "base forward");
        Assert.Equal(new EmbeddingOptions(0, null, false), layer.Options);
        // A sparse base's probe gradient is sparse: the probe still reads it (gradients of the adapter stay dense).
        Assert.Equal(new EmbeddingOptions(null, null, false), new LoraEmbedding(nn.Embedding(6, 3, sparse: true), Config(false)).Options);
    }

    [Fact]
    public void Max_norm_and_scale_grad_by_freq_are_refused_before_anything_changes()
    {
        var maxNorm = nn.Embedding(8, 3, max_norm: 1.5);
        var e = Assert.Throws<AdapterInjectionException>(() => new LoraEmbedding(maxNorm, Config(false)));
        Assert.Contains("max_norm = 1.5", e.Message);
        Assert.True(maxNorm.weight!.requires_grad);

        var byFreq = nn.Embedding(8, 3, scale_grad_by_freq: true);
        e = Assert.Throws<AdapterInjectionException>(() => new LoraEmbedding(byFreq, Config(true)));
        Assert.Contains("scale_grad_by_freq", e.Message);
        Assert.True(byFreq.weight!.requires_grad);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dropout_is_not_applied_as_in_PEFT(bool dora)
    {
        torch.manual_seed(5);
        var layer = new LoraEmbedding(nn.Embedding(40, 8), Config(dora, dropout: 0.5));
        Train(layer);
        Assert.DoesNotContain(layer.named_modules(), m => m.name.Contains("dropout"));
        var x = randint(0, 40, new long[] { 64 }, dtype: ScalarType.Int64);
        layer.train();
        var y1 = layer.call(x);
        TensorAssert.Equal(y1, layer.call(x), "two training passes");
        layer.eval();
        TensorAssert.Close(y1, layer.call(x), 1e-6, 1e-7, "train vs eval");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Merge_unmerge_and_unload_round_trip(bool dora, bool reference)
    {
        torch.manual_seed(6);
        var embedding = nn.Embedding(50, 16);
        var original = embedding.weight!.detach().clone();
        var layer = new LoraEmbedding(embedding, Config(dora)) { UseReferenceDora = reference };
        Train(layer);
        var x = randint(0, 50, new long[] { 3, 7 }, dtype: ScalarType.Int64);
        layer.eval();
        var adapted = layer.call(x).detach().clone();
        Assert.False(adapted.allclose(embedding.call(x), rtol: 0, atol: 1e-3), "the trained adapter must act");

        layer.Merge();
        TensorAssert.Close(adapted, layer.call(x), 1e-5, 1e-6, "merged output");
        layer.Unmerge();
        TensorAssert.Close(original, layer.Weight, 1e-6, 1e-6, "weight after unmerge");
        TensorAssert.Close(adapted, layer.call(x), 1e-5, 1e-6, "unmerged output");

        layer.Merge();
        var plain = (Embedding)layer.Unload();
        Assert.Same(embedding, plain);
        // The base module's own (native) lookup now reads the merged weight.
        TensorAssert.Close(adapted, plain.call(x), 1e-5, 1e-6, "unloaded embedding's output");
    }

    [Fact]
    public void An_index_out_of_range_is_an_error()
    {
        var layer = new LoraEmbedding(nn.Embedding(5, 3), Config(true));
        Assert.ThrowsAny<Exception>(() => layer.call(tensor(new long[] { 1, 5 })));
    }
}
