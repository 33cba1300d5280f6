namespace DoraSharp;

/// <summary>How a DoRA variant computes the row norm n = ‖W + s·B·A‖ (<see cref="DoraVariant.RowNorm(LoraLayer, RowNormMode)"/>).</summary>
internal enum RowNormMode
{
    /// <summary>PEFT's forward computation, term for term (materialising B·A): the <c>UseReferenceDora</c> path.</summary>
    Reference,

    /// <summary>Without materialising B·A (<see cref="DoraRowNorm.Factored"/>; a small Linear sums directly).</summary>
    Factored,

    /// <summary>Factored, kept between eval-mode calls while W, A and B are unchanged (<see cref="EvalCache"/>).</summary>
    Cached,

    /// <summary>‖W + ΔW‖ from the layer's materialised ΔW, as PEFT's <c>update_layer</c> and merge compute it.</summary>
    FromDelta,
}
