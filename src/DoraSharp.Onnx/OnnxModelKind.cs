namespace DoraSharp.Onnx;

/// <summary>What an exported model's single output is.</summary>
public enum OnnxModelKind
{
    /// <summary>Class probabilities <c>(texts, labels)</c>: mean pooling, the linear head and softmax are in the graph.</summary>
    Classification,

    /// <summary>Sentence embeddings <c>(texts, 384)</c>, mean-pooled and scaled to unit L2 norm (cosine = dot product).</summary>
    Embedding,
}
