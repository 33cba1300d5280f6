using DoraSharp.IO;
using DoraSharp.MiniLM.Classification;

namespace DoraSharp.Cli.MiniLm;

/// <summary>
/// Saves what `dora minilm-demo` trains, one folder per run (<c>&lt;method&gt;-seed&lt;seed&gt;</c>): the head as
/// <c>head.safetensors</c> (keys <c>classifier.weight</c>, <c>classifier.bias</c>) and, for LoRA and DoRA, the
/// adapter. Full fine-tuning's encoder (90 MB per run) is not saved.
/// </summary>
internal sealed class MiniLmRunSaver(string folder, ClassificationSettings settings)
{
    private int heads;

    public void Save(TrainedRun run)
    {
        var dir = Path.Combine(folder, $"{run.Result.Method.Key()}-seed{run.Result.Seed}");
        Directory.CreateDirectory(dir);
        var head = run.Head.state_dict().Select(kv => KeyValuePair.Create("classifier." + kv.Key, kv.Value));
        SafetensorsFile.Write(Path.Combine(dir, "head.safetensors"), head);
        heads++;
        if (run.Adapters is not null)
        {
            // TODO(adapter-io): save the adapter in PEFT's format once LoraModel.SaveAdapter lands in main:
            //   run.Adapters.SaveAdapter(dir, new AdapterSaveOptions { BaseModelNameOrPath = "sentence-transformers/all-MiniLM-L6-v2" });
            // It must write adapter_config.json with target_modules from settings.TargetModules and
            // adapter_model.safetensors with keys base_model.model.encoder.layer.{i}.attention.self.{query,value}.lora_A.weight
            // (lora_B.weight, lora_magnitude_vector for DoRA); MiniLmAdapterNamingTests pins those names.
            _ = settings;
        }
    }

    public string Describe() => $"{heads} trained heads saved (adapters: not yet, waiting for the adapter-IO code)";
}
