using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face's <c>BertEncoder</c> module (the stack of layers, <c>encoder.layer.{i}</c>), renamed here
/// because <see cref="DoraSharp.MiniLM.BertEncoder"/> is the whole model.
/// </summary>
public sealed class BertLayerStack : Module<Tensor, TokenLayout, Tensor>
{
    private readonly ModuleList<Module<Tensor, TokenLayout, Tensor>> layer;

    /// <summary>Builds <see cref="BertConfig.NumHiddenLayers"/> layers for <paramref name="config"/>.</summary>
    public BertLayerStack(BertConfig config) : base(nameof(BertLayerStack))
    {
        layer = new ModuleList<Module<Tensor, TokenLayout, Tensor>>();
        for (int i = 0; i < config.NumHiddenLayers; i++) layer.Add(new BertLayer(config));
        RegisterComponents();
    }

    /// <summary>Runs every layer in order over the packed tokens <paramref name="hidden"/> <c>(N, C)</c> of <paramref name="layout"/>; returns <c>(N, C)</c>.</summary>
    public override Tensor forward(Tensor hidden, TokenLayout layout)
    {
        using var scope = NewDisposeScope();
        var x = hidden;
        foreach (var l in layer) x = l.call(x, layout);                      // (N, C)
        return x.MoveToOuterDisposeScope();
    }
}
