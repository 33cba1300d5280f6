namespace DoraSharp.MiniLM.Reference;

/// <summary>
/// How far <see cref="BertEncoder"/> (TorchSharp) is from ONNX Runtime on the same tokens and weights.
/// Differences are maxima of |TorchSharp - ORT| over every compared value.
/// </summary>
/// <param name="Sentences">Sentences compared.</param>
/// <param name="Batches">Padded batches they were run in.</param>
/// <param name="RealTokens">Non-padding positions compared in the last hidden state.</param>
/// <param name="PaddedPositions">Padding positions in the batches (run but not compared).</param>
/// <param name="LongestSequence">Longest tokenized sentence, [CLS] and [SEP] included.</param>
/// <param name="MaxAbsDiffHidden">Over <c>last_hidden_state</c> at real tokens.</param>
/// <param name="MaxAbsDiffPooled">Over the mean-pooled sentence embeddings.</param>
/// <param name="MaxAbsDiffNormalized">Over the L2-normalised sentence embeddings.</param>
/// <param name="MaxAbsDiffPoolerOutput">Over BERT's pooler output (tanh(dense(first token))).</param>
/// <param name="MinCosine">Smallest cosine similarity between the two normalised embeddings of a sentence.</param>
/// <param name="TorchLoadTime">Parsing the ONNX file and loading it into the TorchSharp module.</param>
/// <param name="OrtLoadTime">Creating the ONNX Runtime session.</param>
/// <param name="TokenizeTime">Tokenizing all sentences.</param>
/// <param name="TorchRunTime">TorchSharp forward passes, pooling included.</param>
/// <param name="OrtRunTime">ONNX Runtime runs (its pooling, in plain C#, excluded).</param>
public sealed record OnnxReferenceCheckResult(
    int Sentences,
    int Batches,
    int RealTokens,
    int PaddedPositions,
    int LongestSequence,
    double MaxAbsDiffHidden,
    double MaxAbsDiffPooled,
    double MaxAbsDiffNormalized,
    double MaxAbsDiffPoolerOutput,
    double MinCosine,
    TimeSpan TorchLoadTime,
    TimeSpan OrtLoadTime,
    TimeSpan TokenizeTime,
    TimeSpan TorchRunTime,
    TimeSpan OrtRunTime)
{
    /// <summary>The largest of the four differences.</summary>
    public double MaxAbsDiff => Math.Max(Math.Max(MaxAbsDiffHidden, MaxAbsDiffPooled), Math.Max(MaxAbsDiffNormalized, MaxAbsDiffPoolerOutput));
}
