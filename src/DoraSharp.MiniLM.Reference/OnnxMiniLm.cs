using Microsoft.ML.OnnxRuntime;

namespace DoraSharp.MiniLM.Reference;

/// <summary>
/// ONNX Runtime running the package's all-MiniLM-L6-v2 file: the independent reference for
/// <see cref="BertEncoder"/>. Outputs are copied into plain arrays so nothing ORT-owned escapes.
/// </summary>
public sealed class OnnxMiniLm : IDisposable
{
    private readonly InferenceSession session;

    /// <summary>Opens the package's <c>model.onnx</c> with at most <paramref name="threads"/> intra-op threads.</summary>
    public OnnxMiniLm(int threads = 2)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), $"OnnxMiniLm: threads must be >= 1, got {threads}.");
        byte[] model;
        using (var stream = MiniLmPackage.OpenModel())
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            model = copy.ToArray();
        }
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        session = new InferenceSession(model, options);
    }

    /// <summary>
    /// Runs the graph on <paramref name="batch"/>. Returns <c>last_hidden_state</c> <c>(B, T, C)</c> and the pooler
    /// output <c>(B, C)</c> (the graph's second output), row-major.
    /// </summary>
    public (float[] LastHiddenState, float[] PoolerOutput, int HiddenSize) Run(TokenizedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        using var ids = OrtValue.CreateTensorValueFromMemory(batch.InputIds, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, shape);
        using var types = OrtValue.CreateTensorValueFromMemory(batch.TokenTypeIds, shape);
        var inputs = new Dictionary<string, OrtValue>
        {
            ["input_ids"] = ids,
            ["attention_mask"] = mask,
            ["token_type_ids"] = types,
        };
        var outputNames = session.OutputMetadata.Keys.ToArray(); // last_hidden_state, then the pooler's "924"
        if (outputNames.Length != 2 || outputNames[0] != "last_hidden_state")
            throw new InvalidDataException(
                $"OnnxMiniLm: expected outputs [last_hidden_state, <pooler>], the model has [{string.Join(", ", outputNames)}].");
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, inputs, outputNames);
        var hidden = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var pooler = outputs[1].GetTensorDataAsSpan<float>().ToArray();
        int c = (int)outputs[0].GetTensorTypeAndShape().Shape[2];
        return (hidden, pooler, c);
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => session.Dispose();
}
