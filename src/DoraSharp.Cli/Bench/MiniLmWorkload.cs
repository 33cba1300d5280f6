using System.Globalization;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// all-MiniLM-L6-v2 (pretrained weights) with a 4-class head, as one variant of `dora bench --model minilm`
/// (issue 15): a training step of the frozen encoder + head, LoRA or DoRA (r = 8, α = 16 on query/value, as the
/// issue's PyTorch + PEFT comparison), or full fine-tuning — forward, cross-entropy, backward, AdamW — on a fixed
/// batch of B sentences × T tokens; or inference (eval, no grad) of the encoder's mean-pooled embedding.
/// The batch has padding (a quarter of the rows end after half their tokens), so the attention masks are exercised.
/// </summary>
internal sealed class MiniLmWorkload : IBenchWorkload
{
    public const string ShapePrefix = "minilm-b";
    public const int Rank = 8;
    private const int Classes = 4;

    private static readonly Lazy<global::Onnx.ModelProto> Weights = new(MiniLmWeights.ReadPackageModel);

    private readonly SentenceClassifier _model;
    private readonly List<optim.Optimizer> _optimizers = [];
    private readonly Tensor _ids, _mask, _types, _labels;

    private MiniLmWorkload(SentenceClassifier model, Tensor ids, Tensor mask, Tensor types, Tensor labels)
    {
        _model = model;
        (_ids, _mask, _types, _labels) = (ids, mask, types, labels);
        _optimizers.Add(optim.AdamW(model.Head.parameters(), lr: 1e-3));
        var encoderTrainable = model.Encoder.parameters().Where(p => p.requires_grad).ToList();
        if (encoderTrainable.Count > 0) _optimizers.Add(optim.AdamW(encoderTrainable, lr: 1e-4));
    }

    /// <summary>"minilm-b16x48" for batch 16 × 48 tokens.</summary>
    public static string ShapeName(int batch, int tokens) => $"{ShapePrefix}{batch}x{tokens}";

    /// <summary>(batch, tokens) from <see cref="ShapeName"/>'s form.</summary>
    public static (int Batch, int Tokens) ParseShape(string shape) => TryParseShape(shape, out var parsed) ? parsed
        : throw new UsageException($"--shapes: '{shape[ShapePrefix.Length..]}' is not BATCHxTOKENS with batch 1 to 4096 and tokens 2 to 512 (e.g. 16x48).");

    /// <summary>Parses minilm-bBxT; false unless 1 ≤ B ≤ 4096 and 2 ≤ T ≤ 512 (BERT's position table).</summary>
    public static bool TryParseShape(string shape, out (int Batch, int Tokens) parsed)
    {
        parsed = default;
        var parts = shape.StartsWith(ShapePrefix, StringComparison.Ordinal) ? shape[ShapePrefix.Length..].Split('x') : [];
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var b)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var t) || b is < 1 or > 4096 || t is < 2 or > 512)
            return false;
        parsed = (b, t);
        return true;
    }

    /// <summary>Builds <paramref name="variant"/> (<see cref="MiniLmVariants"/>) for batch × tokens; same weights and batch for every variant.</summary>
    public static MiniLmWorkload Create(int batch, int tokens, string variant)
    {
        var encoder = new BertEncoder(BertConfig.AllMiniLmL6V2);
        MiniLmWeights.LoadInto(encoder, Weights.Value);
        torch.manual_seed(42);
        var model = new SentenceClassifier(encoder, Classes);
        switch (variant)
        {
            case MiniLmVariants.Lora or MiniLmVariants.Dora:
                var lora = LoraModel.Wrap(encoder, new LoraConfig { R = Rank, LoraAlpha = 2 * Rank, UseDora = variant == MiniLmVariants.Dora, TargetModules = ["query", "value"] });
                // Give B values: trained adapters have B ≠ 0 (and at B = 0 some work could be skipped).
                using (no_grad())
                    foreach (var layer in lora.Layers.Values) layer.LoraB.normal_(0, 0.01);
                break;
            case MiniLmVariants.Full:
                foreach (var (name, p) in encoder.named_parameters()) p.requires_grad = !name.StartsWith("pooler.", StringComparison.Ordinal);
                break;
            default:
                foreach (var p in encoder.parameters()) p.requires_grad = false;
                break;
        }
        var generator = new Generator(7);
        var ids = torch.randint(1000, 30000, [batch, tokens], generator: generator, dtype: ScalarType.Int64);
        var mask = torch.ones(batch, tokens, dtype: ScalarType.Int64);
        for (var row = 0; row < batch; row += 4) mask[row, TensorIndex.Slice(tokens / 2)] = torch.tensor(0L);
        ids.masked_fill_(mask.eq(0), 0);                       // [PAD] is id 0
        var types = torch.zeros(batch, tokens, dtype: ScalarType.Int64);
        var labels = torch.randint(0, Classes, [batch], generator: generator, dtype: ScalarType.Int64);
        return new MiniLmWorkload(model, ids, mask, types, labels);
    }

    public void Enter(string phase)
    {
        if (phase == Phases.Train) _model.train(); else _model.eval();
    }

    public void Run(string phase)
    {
        using var scope = NewDisposeScope();
        if (phase == Phases.Train)
        {
            foreach (var o in _optimizers) o.zero_grad();
            var loss = nn.functional.cross_entropy(_model.call(_ids, _mask, _types), _labels);
            loss.backward();
            foreach (var o in _optimizers) o.step();
        }
        else
        {
            using var noGrad = no_grad();
            var output = _model.Encoder.call(_ids, _mask, _types);
            SentencePooling.MeanPool(output.LastHiddenState, _mask);
        }
    }

    public void Dispose()
    {
        foreach (var o in _optimizers) o.Dispose();
        _model.Dispose();
        _ids.Dispose();
        _mask.Dispose();
        _types.Dispose();
        _labels.Dispose();
    }
}

/// <summary>The variants of `dora bench --model minilm`.</summary>
internal static class MiniLmVariants
{
    public const string Frozen = "frozen", Lora = "lora", Dora = "dora", Full = "full";
    public static readonly string[] Training = [Frozen, Lora, Dora, Full];

    /// <summary>Inference: the plain pretrained encoder, and with unmerged DoRA adapters.</summary>
    public static readonly string[] Inference = [Frozen, Dora];
}
