namespace DoraSharp.MiniLM.Export;

/// <summary>What <see cref="RunExporter.Export"/> exports, where, and how strictly it checks the result.</summary>
public sealed record ExportOptions
{
    /// <summary>Largest allowed difference between ONNX Runtime and TorchSharp on a probability or embedding value.</summary>
    public const double DefaultTolerance = 1e-4;

    /// <summary>
    /// The `dora train` run folder (run.json, adapter/ or the weights, validation.jsonl); exactly one of this and
    /// <see cref="Adapter"/> is set.
    /// </summary>
    public string? Run { get; init; }

    /// <summary>
    /// A PEFT LoRA/DoRA adapter folder (adapter_config.json, adapter_model.safetensors) for the shipped
    /// all-MiniLM-L6-v2 encoder, keys on Hugging Face's BertModel (as a `dora train` similarity run or PEFT on
    /// <c>AutoModel</c> saves them); exported as an embedding model, since a bare adapter carries no labels. Exactly one
    /// of this and <see cref="Run"/> is set.
    /// </summary>
    public string? Adapter { get; init; }

    /// <summary>The folder to write; it must not exist unless <see cref="Force"/>.</summary>
    public required string Out { get; init; }

    /// <summary>Replace an existing <see cref="Out"/> (atomically, once the new export has passed its check).</summary>
    public bool Force { get; init; }

    /// <summary>
    /// Validation texts compared between ONNX Runtime and TorchSharp, at most (the first ones of the run's
    /// validation.jsonl). An <see cref="Adapter"/> has no validation set: it is checked on fixed texts instead.
    /// </summary>
    public int CheckTexts { get; init; } = 64;

    /// <summary>See <see cref="DefaultTolerance"/>.</summary>
    public double Tolerance { get; init; } = DefaultTolerance;

    /// <summary>ONNX Runtime intra-op threads for the check (0: one per core).</summary>
    public int OnnxThreads { get; init; } = 1;

    /// <summary>Written into model.json's <c>created_by</c>.</summary>
    public string CreatedBy { get; init; } = "DoraSharp";
}
