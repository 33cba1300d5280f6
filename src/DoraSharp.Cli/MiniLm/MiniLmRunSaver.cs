using DoraSharp.IO;
using DoraSharp.MiniLM.Classification;

namespace DoraSharp.Cli.MiniLm;

/// <summary>
/// Saves what `dora minilm-demo` trains, one folder per run (<c>&lt;method&gt;-seed&lt;seed&gt;</c>): the head as
/// <c>head.safetensors</c> (keys <c>classifier.weight</c>, <c>classifier.bias</c>) and, for LoRA and DoRA, the
/// adapter in PEFT's format in <c>adapter/</c>, keyed for Hugging Face's <c>BertModel</c>. Full fine-tuning's
/// encoder (90 MB per run) is not saved.
/// </summary>
internal sealed class MiniLmRunSaver(string folder)
{
    /// <summary>The PEFT adapter's subfolder in a run's folder.</summary>
    public const string AdapterFolder = "adapter";

    /// <summary>The Hugging Face id of the base model, written to adapter_config.json.</summary>
    public const string BaseModel = "sentence-transformers/all-MiniLM-L6-v2";

    private int heads, adapters;

    public void Save(TrainedRun run)
    {
        var dir = Path.Combine(folder, $"{run.Result.Method.Key()}-seed{run.Result.Seed}");
        Directory.CreateDirectory(dir);
        var head = run.Head.state_dict().Select(kv => KeyValuePair.Create("classifier." + kv.Key, kv.Value));
        SafetensorsFile.Write(Path.Combine(dir, "head.safetensors"), head);
        heads++;
        if (run.Adapters is not null)
        {
            // A subfolder: an adapter directory may hold only PEFT's files. Loads in Python with
            // PeftModel.from_pretrained(BertModel.from_pretrained(BaseModel), "<dir>/adapter").
            run.Adapters.SaveAdapter(Path.Combine(dir, AdapterFolder), new AdapterSaveOptions
            {
                BaseModelNameOrPath = BaseModel,
                AutoMapping = new PeftAutoMapping("BertModel", "transformers.models.bert.modeling_bert"),
            });
            adapters++;
        }
    }

    public string Describe() => $"{heads} heads and {adapters} PEFT adapters saved";
}
