using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// One model configured as one variant, ready to time: a single Linear layer of a given shape, or the demo
/// MLP. Every variant of a workload starts from the same weights and input.
/// </summary>
internal sealed class BenchWorkload : IBenchWorkload
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly LoraModel? _lora;
    private readonly optim.Optimizer? _optimizer;
    private readonly Tensor _x, _gradOut;

    private BenchWorkload(nn.Module<Tensor, Tensor> model, LoraModel? lora, Tensor x, Tensor gradOut)
    {
        _model = model;
        _lora = lora;
        _x = x;
        _gradOut = gradOut;
        if (lora is not null) _optimizer = optim.Adam(lora.TrainableParameters(), lr: 1e-4);
    }

    /// <summary>Builds <paramref name="variant"/> of the workload "OUTxIN" (one Linear) or "mlp" (the demo MLP).</summary>
    public static BenchWorkload Create(string shape, int r, int tokens, string variant)
    {
        torch.manual_seed(42);
        nn.Module<Tensor, Tensor> model;
        long inFeatures;
        if (shape == "mlp")
        {
            model = new DemoShapedMlp();
            inFeatures = 784;
        }
        else
        {
            var (outF, inF) = ParseShape(shape);
            model = new SingleLinear(inF, outF);
            inFeatures = inF;
        }
        var x = torch.randn(tokens, inFeatures);
        using var probe = torch.no_grad();
        var gradOut = torch.randn_like(model.call(x));
        LoraModel? lora = null;
        if (variant != Variants.Base)
        {
            lora = LoraModel.Wrap(model, new LoraConfig { R = r, LoraAlpha = 2 * r, UseDora = variant != Variants.Lora, TargetModulesRegex = ".*" });
            // Give B values: at B = 0 some work could be skipped by a clever kernel; trained adapters have B ≠ 0.
            foreach (var layer in lora.Layers.Values) layer.LoraB.normal_(0, 0.01);
            lora.UseReferenceDora = variant == Variants.DoraReference;
        }
        else
        {
            foreach (var p in model.parameters()) p.requires_grad = false;
        }
        return new BenchWorkload(model, lora, x, gradOut);
    }

    public static (long Out, long In) ParseShape(string shape) =>
        TryParseShape(shape, long.MaxValue, out var parsed) ? parsed : throw new UsageException($"--shapes: '{shape}' is not OUTxIN (e.g. 2048x2048) or 'mlp'.");

    /// <summary>Reads OUTxIN with each side from 1 to <paramref name="maxSide"/>.</summary>
    public static bool TryParseShape(string shape, long maxSide, out (long Out, long In) parsed)
    {
        var parts = shape.Split('x');
        parsed = default;
        if (parts.Length != 2 || !long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var o)
            || !long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i)
            || o < 1 || i < 1 || o > maxSide || i > maxSide)
            return false;
        parsed = (o, i);
        return true;
    }

    /// <summary>Prepares a phase: train or eval mode, merged or not.</summary>
    public void Enter(string phase)
    {
        if (phase == Phases.Train) _model.train(); else _model.eval();
        if (_lora is null) return;
        if (phase == Phases.InferMerged && !_lora.IsMerged) _lora.Merge();
        if (phase != Phases.InferMerged && _lora.IsMerged) _lora.Unmerge();
    }

    /// <summary>
    /// One unit of work. Train: forward, backward to the input and (with adapters) to the adapters, and an
    /// optimizer step — the input requires grad as a mid-network activation would; the frozen base has no
    /// optimizer step (it is the floor no adapter can beat). Infer: one no-grad forward.
    /// </summary>
    public void Run(string phase)
    {
        using var scope = NewDisposeScope();
        if (phase == Phases.Train)
        {
            _optimizer?.zero_grad();
            var x = _x.detach().requires_grad_(true);
            var y = _model.call(x);
            y.backward(new[] { _gradOut });
            _optimizer?.step();
        }
        else
        {
            using var noGrad = no_grad();
            _model.call(_x);
        }
    }

    public void Dispose()
    {
        _optimizer?.Dispose();
        _model.Dispose();
        _x.Dispose();
        _gradOut.Dispose();
    }

    private sealed class SingleLinear : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> layer;
        public SingleLinear(long inF, long outF) : base(nameof(SingleLinear)) { layer = nn.Linear(inF, outF); RegisterComponents(); }
        public override Tensor forward(Tensor x) => layer.call(x);
    }

    private sealed class DemoShapedMlp : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> layers;
        public DemoShapedMlp() : base(nameof(DemoShapedMlp))
        {
            layers = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10));
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => layers.call(x);
    }
}
