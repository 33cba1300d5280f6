using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face's <c>BertEncoder</c> module (the stack of layers, <c>encoder.layer.{i}</c>), renamed here
/// because <see cref="DoraSharp.MiniLM.BertEncoder"/> is the whole model.
/// </summary>
public sealed class BertLayerStack : Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<Module<Tensor, Tensor, Tensor>> layer;

    /// <summary>Builds <see cref="BertConfig.NumHiddenLayers"/> layers for <paramref name="config"/>.</summary>
    public BertLayerStack(BertConfig config) : base(nameof(BertLayerStack))
    {
        layer = new ModuleList<Module<Tensor, Tensor, Tensor>>();
        for (int i = 0; i < config.NumHiddenLayers; i++) layer.Add(new BertLayer(config));
        RegisterComponents();
    }

    /// <summary>Runs every layer in order over <paramref name="hidden"/> <c>(B, T, C)</c>; returns <c>(B, T, C)</c>.</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        var x = hidden;
        foreach (var l in layer) x = l.call(x, additiveMask);                // (B, T, C)
        return x.MoveToOuterDisposeScope();
    }
}
