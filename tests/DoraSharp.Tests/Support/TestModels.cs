using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.Tests;

/// <summary>A user-defined block in the TorchSharp idiom: layers in Module&lt;Tensor, Tensor&gt; fields.</summary>
internal sealed class Block : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> fc1;
    private readonly Module<Tensor, Tensor> fc2;

    public Block(int width) : base(nameof(Block))
    {
        fc1 = Linear(width, 2 * width);
        fc2 = Linear(2 * width, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = functional.relu(fc1.call(x));
        return fc2.call(h);
    }
}

/// <summary>Every container kind at once: Sequential, ModuleList of custom blocks, ModuleDict of heads.</summary>
internal sealed class ContainerNet : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> stem;
    private readonly ModuleList<Module<Tensor, Tensor>> blocks;
    private readonly ModuleDict<Module<Tensor, Tensor>> heads;

    public ContainerNet() : base(nameof(ContainerNet))
    {
        stem = Sequential(("0", Linear(6, 4)), ("1", ReLU()), ("2", Linear(4, 4)));
        blocks = new ModuleList<Module<Tensor, Tensor>>(new Block(4), new Block(4));
        heads = new ModuleDict<Module<Tensor, Tensor>>();
        heads.Add("a", Linear(4, 3));
        heads.Add("b", Linear(4, 3));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = stem.call(x);
        foreach (var block in blocks) h = block.call(h);
        return scope.MoveToOuter(heads["a"].call(h) + heads["b"].call(h));
    }
}

/// <summary>A layer declared with TorchSharp's sealed Linear type: no adapter can take its place.</summary>
internal sealed class SealedFieldNet : Module<Tensor, Tensor>
{
    private readonly Linear proj;

    public SealedFieldNet() : base(nameof(SealedFieldNet))
    {
        proj = Linear(4, 4);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => proj.call(x);
}

/// <summary>The demo's MLP shape (784→32→64→10) as PyTorch's nn.Sequential would name it: layers.0/2/4.</summary>
internal sealed class Mlp : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> layers;

    public Mlp(long input = 784, long hidden1 = 32, long hidden2 = 64, long classes = 10) : base(nameof(Mlp))
    {
        layers = Sequential(Linear(input, hidden1), ReLU(), Linear(hidden1, hidden2), ReLU(), Linear(hidden2, classes));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => layers.call(x);
}

/// <summary>
/// Token ids → Embedding → an 8×8 "image" → Conv2d → ReLU → a frozen Conv2d → Linear head, the layers in
/// Module&lt;Tensor, Tensor&gt; fields (x: (batch, 8) int64 ids below 20).
/// </summary>
internal sealed class TokenConvNet : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> embed;
    private readonly Module<Tensor, Tensor> conv;
    private readonly Module<Tensor, Tensor> mix;
    private readonly Module<Tensor, Tensor> head;

    public TokenConvNet() : base(nameof(TokenConvNet))
    {
        embed = Embedding(20, 8);
        conv = Conv2d(1, 4, 3, padding: 1);
        mix = Conv2d(4, 2, 1);
        head = Linear(2 * 8 * 8, 3);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var image = embed.call(x).unsqueeze(1);                     // (batch, 1, 8, 8)
        var h = mix.call(functional.relu(conv.call(image)));        // (batch, 2, 8, 8)
        return scope.MoveToOuter(head.call(h.flatten(1)));
    }
}

/// <summary>An adaptable 1×1 Conv2d followed by a grouped one, which adapters refuse (PEFT cannot merge it).</summary>
internal sealed class GroupedConvNet : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> first;
    private readonly Module<Tensor, Tensor> grouped;

    public GroupedConvNet() : base(nameof(GroupedConvNet))
    {
        first = Conv2d(2, 4, 1);
        grouped = Conv2d(4, 4, 3, padding: 1, groups: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = first.call(x);
        return grouped.call(h);
    }
}
