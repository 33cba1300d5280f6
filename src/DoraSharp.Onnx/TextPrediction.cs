namespace DoraSharp.Onnx;

/// <summary>One text's classification.</summary>
/// <param name="Label">The most probable label (the first one on a tie, as an arg-max).</param>
/// <param name="Probabilities">Probability of each label, in <see cref="OnnxTextModel.Labels"/> order; sums to 1.</param>
public sealed record TextPrediction(string Label, float[] Probabilities);
