using CsCheck;
using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Save → load over random configs, model shapes and dtypes gives back the adapter bit for bit: the same tensors,
/// the same options, the same outputs, and saving the loaded adapter again writes the same bytes.
/// </summary>
public sealed class AdapterRoundTripTests
{
    private static readonly ScalarType[] BaseTypes = [ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16];

    /// <summary>One random case: the model, the adapter options and the seed for every random value.</summary>
    private sealed record Case(
        long[] Widths, int BaseType, int R, double Alpha, double Dropout, bool Dora, bool RsLora, bool Gaussian,
        int TargetMask, int ExcludeMask, bool Regex, int Seed)
    {
        public int Layers => Widths.Length - 1;
        public IEnumerable<int> Targeted => Enumerable.Range(0, Layers).Where(i => (TargetMask & (1 << i)) != 0);
        public IEnumerable<int> Excluded => Enumerable.Range(0, Layers).Where(i => (ExcludeMask & (1 << i)) != 0 && (TargetMask & (1 << i)) == 0);

        public LoraConfig Config => new()
        {
            R = R,
            LoraAlpha = Alpha,
            LoraDropout = Dropout,
            UseDora = Dora,
            UseRsLora = RsLora,
            InitLoraWeights = Gaussian ? LoraInit.Gaussian : LoraInit.Default,
            // A list entry also matches by suffix (PEFT's rule), so "4" targets layers.4 — exercised here too.
            TargetModules = Regex ? null : Targeted.Select(i => i % 2 == 0 ? $"layers.{2 * i}" : $"{2 * i}").ToList(),
            TargetModulesRegex = Regex ? $"layers\\.({string.Join("|", Targeted.Select(i => 2 * i))})" : null,
            ExcludeModules = Excluded.Any() ? Excluded.Select(i => $"layers.{2 * i}").ToList() : null,
        };

        public override string ToString() =>
            $"widths [{string.Join(", ", Widths)}], {BaseTypes[BaseType]}, r {R}, alpha {Alpha:R}, dropout {Dropout:R}, dora {Dora}, rslora {RsLora}, " +
            $"gaussian {Gaussian}, targets {TargetMask}, exclude {ExcludeMask}, regex {Regex}, seed {Seed}";
    }

    private static readonly Gen<double> Alpha = Gen.OneOf(
        Gen.Int[1, 64].Select(i => (double)i),
        Gen.Double[1e-6, 1e6],
        // Up to LoraConfig.MaxScaling (the largest alpha valid at r = 1); 999999.9999999999 is a long shortest-round-trip text.
        Gen.Const(1e-7), Gen.Const(LoraConfig.MaxScaling), Gen.Const(999999.9999999999), Gen.Const(0.1 + 0.2));

    private static readonly Gen<Case> Cases =
        from widths in Gen.Long[1, 9].Array[2, 5]
        from baseType in Gen.Int[0, BaseTypes.Length - 1]
        from r in Gen.Int[1, 6]
        from alpha in Alpha
        from dropout in Gen.OneOf(Gen.Const(0.0), Gen.Double[0, 0.999])
        from dora in Gen.Bool
        from rslora in Gen.Bool
        from gaussian in Gen.Bool
        from targets in Gen.Int[1, (1 << (widths.Length - 1)) - 1]
        from exclude in Gen.Int[0, (1 << (widths.Length - 1)) - 1]
        from regex in Gen.Bool
        from seed in Gen.Int
        select new Case(widths, baseType, r, alpha, dropout, dora, rslora, gaussian, targets, exclude, regex, seed);

    [Fact]
    public void Save_then_load_is_bit_identical_for_random_adapters()
    {
        using var temp = new TempDirectory();
        // Sample runs cases on several threads: every file name is unique per case.
        Cases.Sample(c =>
        {
            string id = Guid.NewGuid().ToString("N");
            string directory = temp.File($"case-{id}");
            var original = Build(c);
            var lora = LoraModel.Wrap(original, c.Config);
            Randomize(lora, c.Seed);
            lora.SaveAdapter(directory);
            string basePath = temp.File($"base-{id}.safetensors");
            BaseWeightsFile.Save(original, basePath);

            var restored = new SequentialMlp(c.Widths, BaseTypes[c.BaseType]);
            BaseWeightsFile.Load(restored, basePath);
            var loaded = LoraModel.LoadAdapter(restored, directory, isTrainable: true);

            Assert.Equal(lora.Layers.Keys, loaded.Layers.Keys);
            foreach (var (path, layer) in lora.Layers)
            {
                var other = loaded.Layers[path];
                TensorAssert.Equal(layer.LoraA.detach(), other.LoraA.detach(), $"{c}: {path} lora_A");
                TensorAssert.Equal(layer.LoraB.detach(), other.LoraB.detach(), $"{c}: {path} lora_B");
                if (c.Dora) TensorAssert.Equal(layer.Magnitude!.detach(), other.Magnitude!.detach(), $"{c}: {path} magnitude");
                Assert.All(other.AdapterParameters(), p => Assert.True(p.Parameter.requires_grad));
            }
            foreach (var (key, value) in original.state_dict()) TensorAssert.Equal(value.detach(), restored.state_dict()[key].detach(), $"{c}: {key}");

            AssertSameOptions(c.Config, loaded.Config, c);

            original.eval();
            restored.eval();
            using (no_grad())
            {
                using var x = torch.rand(3, c.Widths[0], generator: new Generator().manual_seed(c.Seed)).to(BaseTypes[c.BaseType]);
                // Bytes, not allclose: a float16 base with a large alpha overflows to the same inf/NaN on both sides.
                using var expected = original.call(x);
                using var actual = restored.call(x);
                Assert.True(TensorTestData.Bytes(expected).AsSpan().SequenceEqual(TensorTestData.Bytes(actual)), $"{c}: outputs differ");
            }

            string again = temp.File($"again-{id}");
            loaded.SaveAdapter(again);
            foreach (string file in new[] { "adapter_config.json", "adapter_model.safetensors" })
            {
                Assert.True(File.ReadAllBytes(Path.Combine(directory, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(again, file))),
                    $"{c}: re-saving the loaded adapter changed {file}");
            }
        }, iter: 300);
    }

    private static SequentialMlp Build(Case c)
    {
        torch.manual_seed(c.Seed);
        return new SequentialMlp(c.Widths, BaseTypes[c.BaseType]);
    }

    /// <summary>Trained-looking values: B nonzero, magnitude away from its init, all from the case's seed.</summary>
    private static void Randomize(LoraModel lora, int seed)
    {
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        foreach (var layer in lora.Layers.Values.Distinct())
        {
            layer.LoraA.copy_(torch.randn(layer.LoraA.shape, dtype: layer.LoraA.dtype, generator: g));
            layer.LoraB.copy_(torch.randn(layer.LoraB.shape, dtype: layer.LoraB.dtype, generator: g));
            layer.Magnitude?.mul_(torch.rand(layer.Magnitude.shape, dtype: layer.Magnitude.dtype, generator: g).add_(0.5));
        }
    }

    private static void AssertSameOptions(LoraConfig expected, LoraConfig actual, Case c)
    {
        Assert.True(expected.R == actual.R, $"{c}: r {actual.R}");
        Assert.True(BitConverter.DoubleToInt64Bits(expected.LoraAlpha) == BitConverter.DoubleToInt64Bits(actual.LoraAlpha), $"{c}: lora_alpha read back as {actual.LoraAlpha:R}");
        Assert.True(BitConverter.DoubleToInt64Bits(expected.LoraDropout) == BitConverter.DoubleToInt64Bits(actual.LoraDropout), $"{c}: lora_dropout read back as {actual.LoraDropout:R}");
        Assert.Equal(expected.UseDora, actual.UseDora);
        Assert.Equal(expected.UseRsLora, actual.UseRsLora);
        Assert.Equal(expected.InitLoraWeights, actual.InitLoraWeights);
        Assert.Equal(expected.TargetModulesRegex, actual.TargetModulesRegex);
        // PEFT keeps the lists as sets, so only membership is kept.
        Assert.Equal(expected.TargetModules?.Order(StringComparer.Ordinal), actual.TargetModules);
        Assert.Equal(expected.ExcludeModules?.Order(StringComparer.Ordinal), actual.ExcludeModules);
    }
}
