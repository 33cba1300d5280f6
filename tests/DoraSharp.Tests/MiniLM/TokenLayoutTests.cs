using System.Reflection;
using DoraSharp.MiniLM;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// Skipping padding (<see cref="TokenLayout"/>, <see cref="BertEncoder.SkipPadding"/>): the layers see only the real
/// tokens, and real tokens get what computing every position gives them, forward and backward, LoRA and DoRA.
/// </summary>
public sealed class TokenLayoutTests
{
    // Row 0 unpadded, row 1 ends after 2 tokens, row 2 after 3: 4 + 2 + 3 = 9 real tokens of 12.
    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static Tensor PaddedMask() => tensor(new long[] { 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0 }, [3, 4]);

    [Fact]
    public void Pack_keeps_the_real_tokens_in_order_and_unpad_puts_them_back_with_zeros_at_padding()
    {
        using var scope = NewDisposeScope();
        var layout = TokenLayout.For(PaddedMask(), ScalarType.Float32);
        Assert.True(layout.SkipsPadding);
        Assert.Equal(9, layout.Rows);
        Assert.Equal((3L, 4L), (layout.Batch, layout.Length));

        var padded = arange(3 * 4 * 2, dtype: ScalarType.Float32).reshape(3, 4, 2);   // value = 2·(4b + t) + c
        var packed = layout.Pack(padded);
        Assert.Equal(new long[] { 9, 2 }, packed.shape);
        var expectedFirst = new[] { 0f, 2, 4, 6, 8, 10, 16, 18, 20 };                    // positions 0-3, 4-5, 8-10
        Assert.Equal(expectedFirst, packed[.., 0].data<float>().ToArray());

        var back = layout.Unpad(packed);
        Assert.Equal(new long[] { 3, 4, 2 }, back.shape);
        var keep = PaddedMask().unsqueeze(2).to_type(ScalarType.Float32);
        Assert.True(Same(back, padded * keep), "real tokens come back in place, padding positions are zero");
    }

    [Fact]
    public void Without_padding_or_when_asked_every_position_is_kept()
    {
        using var scope = NewDisposeScope();
        var full = TokenLayout.For(ones(2, 5, dtype: ScalarType.Int64), ScalarType.Float32);
        Assert.False(full.SkipsPadding);
        Assert.Equal(10, full.Rows);
        var kept = TokenLayout.For(PaddedMask(), ScalarType.Float32, skipPadding: false);
        Assert.False(kept.SkipsPadding);
        Assert.Equal(12, kept.Rows);
        var x = randn(3, 4, 6);
        Assert.True(Same(kept.Unpad(kept.Pack(x)), x));
        // The additive mask is the same either way: padding keys are masked whether or not their rows are computed.
        Assert.True(Same(kept.AdditiveMask, TokenLayout.For(PaddedMask(), ScalarType.Float32).AdditiveMask));
    }

    [Fact]
    public void A_mask_that_is_not_b_by_t_is_refused()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => TokenLayout.For(ones(12, dtype: ScalarType.Int64), ScalarType.Float32));
        Assert.Contains("(B, T)", e.Message);
    }

    private sealed class RowRecorder(nn.Module<Tensor, Tensor> inner) : nn.Module<Tensor, Tensor>("RowRecorder")
    {
        public readonly List<long> Rows = [];
        public override Tensor forward(Tensor x)
        {
            Rows.Add(x.shape[0]);
            return inner.call(x);
        }
    }

    [Fact]
    public void The_layers_compute_only_the_real_tokens_of_a_padded_batch()
    {
        using var model = new BertEncoder(TinyBert.Config);
        model.eval();
        using var scope = NewDisposeScope();
        var selfAttention = model.named_modules().Single(m => m.name == "encoder.layer.0.attention.self").module;
        var field = selfAttention.GetType().GetField("value", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var recorder = new RowRecorder((nn.Module<Tensor, Tensor>)field.GetValue(selfAttention)!);
        field.SetValue(selfAttention, recorder);
        var mask = PaddedMask();
        var ids = randint(1, 50, [3, 4], dtype: ScalarType.Int64).mul(mask);

        model.call(ids, mask, zeros_like(ids));
        model.SkipPadding = false;
        model.call(ids, mask, zeros_like(ids));
        model.SkipPadding = true;
        model.call(ids, ones_like(ids), zeros_like(ids));
        Assert.Equal(new long[] { 9, 12, 12 }, recorder.Rows);
    }

    public static TheoryData<bool> DoraOrLora() => new() { false, true };

    [Theory]
    [MemberData(nameof(DoraOrLora))]
    public void Skipping_padding_gives_real_tokens_and_adapter_gradients_what_computing_every_position_gives(bool useDora)
    {
        // Dropout off so that both runs draw nothing; training mode so that DoRA takes its training path.
        var config = TinyBert.Config with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        manual_seed(5);
        using var model = new BertEncoder(config);
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 2, LoraAlpha = 4, UseDora = useDora, TargetModules = ["query", "value"] });
        using (no_grad())
            foreach (var layer in lora.Layers.Values) layer.LoraB.normal_(0, 0.1);
        model.train();
        using var scope = NewDisposeScope();
        var mask = PaddedMask();
        var ids = randint(1, 50, [3, 4], dtype: ScalarType.Int64).mul(mask);
        var weights = randn(3, 4, config.HiddenSize);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        Assert.Equal(useDora ? 12 : 8, trainable.Count);

        (Tensor Hidden, Tensor[] Grads) Run(bool skip)
        {
            model.SkipPadding = skip;
            foreach (var p in trainable) p.grad?.zero_();
            var hidden = model.call(ids, mask, zeros_like(ids)).LastHiddenState;
            // A loss over real tokens only, as masked pooling makes it.
            hidden.mul(weights).mul(mask.unsqueeze(2)).sum().backward();
            return (hidden.detach(), trainable.Select(p => p.grad!.clone()).ToArray());
        }
        var (skipped, skippedGrads) = Run(true);
        var (every, everyGrads) = Run(false);

        var keep = mask.unsqueeze(2).to_type(ScalarType.Float32);
        TensorAssert.Close(every.mul(keep), skipped.mul(keep), rtol: 1e-5, atol: 1e-6, "hidden states at real tokens");
        Assert.Equal(0f, skipped.mul(1 - keep).abs().max().item<float>());
        Assert.True(every.mul(1 - keep).abs().max().item<float>() > 0, "computing every position fills the padding rows");
        for (var i = 0; i < trainable.Count; i++)
        {
            Assert.True(everyGrads[i].abs().max().item<float>() > 0, $"gradient {i} is zero: the comparison would prove nothing");
            TensorAssert.Close(everyGrads[i], skippedGrads[i], rtol: 1e-4, atol: 1e-6, $"gradient of trainable parameter {i}");
        }
    }
}
