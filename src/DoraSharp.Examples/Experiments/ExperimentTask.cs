namespace DoraSharp.Examples.Experiments;

/// <summary>What the fine-tuning phase of the worked example learns.</summary>
public enum ExperimentTask
{
    /// <summary>
    /// Pretrain on the images as they are, then fine-tune and test on the same images turned 90°
    /// counter-clockwise: the pretrained model falls to near chance and fine-tuning must recover it.
    /// </summary>
    Shift,

    /// <summary>The original recipe exactly: keep training on the same data it was pretrained on, and test on the usual test split.</summary>
    Continue,
}
