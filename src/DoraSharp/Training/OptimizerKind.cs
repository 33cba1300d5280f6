namespace DoraSharp.Training;

/// <summary>The optimizer a <see cref="Trainer"/> builds (PyTorch's <c>torch.optim</c> classes of the same names).</summary>
public enum OptimizerKind
{
    /// <summary>Adam (Kingma and Ba 2014); weight decay, if any, is added to the gradient (L2), as in <c>torch.optim.Adam</c>.</summary>
    Adam,

    /// <summary>AdamW (Loshchilov and Hutter 2019): weight decay applied to the weights, decoupled from the gradient.</summary>
    AdamW,
}
