using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>
/// Saves and loads LoRA/DoRA adapters in Hugging Face PEFT's format — a directory holding
/// <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> — interchangeable with PEFT's
/// <c>PeftModel.save_pretrained</c> and <c>PeftModel.from_pretrained</c> in both directions.
/// See docs/adapter-format.md for the format and its guarantees.
/// </summary>
/// <remarks>
/// <para><b>Saving</b> writes what PEFT writes for the same adapter: every <c>LoraConfig</c> field at PEFT's
/// default or the adapter's value, in PEFT's JSON layout, and the tensors under PEFT's keys
/// (<c>base_model.model.&lt;module path&gt;.lora_A.weight</c>, <c>.lora_B.weight</c>, <c>.lora_magnitude_vector</c>; for an
/// Embedding <c>.lora_embedding_A</c> and <c>.lora_embedding_B</c>) in
/// their own dtype, with safetensors metadata <c>{"format":"pt"}</c>. The directory is replaced atomically: a
/// reader sees the old pair or the new pair, never a mix (details on <see cref="Save(LoraModel, string, AdapterSaveOptions?)"/>).</para>
/// <para><b>Loading</b> checks everything before it changes anything: the config (options DoraSharp does not
/// implement are refused by name), the safetensors structure, that the keys are exactly those the config and the
/// model call for, and every dtype and shape. Only then are the adapters attached and filled. A load that throws
/// leaves the model exactly as it was, and allocates at most the tensor file's size plus the adapters' own size,
/// whatever a header claims.</para>
/// </remarks>
public static class AdapterFiles
{
    /// <summary>The config file of an adapter directory (PEFT's <c>CONFIG_NAME</c>).</summary>
    public const string ConfigFileName = PeftAdapterConfig.FileName;

    /// <summary>The tensor file of an adapter directory (PEFT's <c>SAFETENSORS_WEIGHTS_NAME</c>).</summary>
    public const string TensorsFileName = AdapterDirectory.TensorsFileName;

    private static readonly IReadOnlyDictionary<string, string> PeftMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>
    /// Writes the adapters of <paramref name="lora"/> to <paramref name="directory"/> as PEFT's
    /// <c>save_pretrained</c> does, so that Python loads them with <c>PeftModel.from_pretrained(base, directory)</c>.
    /// </summary>
    /// <remarks>
    /// The new files are written and flushed to disk in a hidden sibling directory, which then replaces
    /// <paramref name="directory"/> by renames: any reader finds the complete old pair or the complete new pair.
    /// A crash between the two renames leaves no directory and the old pair in a hidden
    /// <c>.&lt;name&gt;.dorasharp-previous-…</c> sibling, which <see cref="Load"/> then points to. Because the directory is
    /// replaced as a whole, it may hold only the adapter files and PEFT's <c>README.md</c> (kept); anything else is
    /// refused rather than deleted. The adapters may be merged: merging does not change A, B or the magnitude.
    /// </remarks>
    /// <param name="lora">The adapted model.</param>
    /// <param name="directory">The adapter directory to create or replace; its parents are created.</param>
    /// <param name="options">Informational config fields (base model name, auto_mapping); null for PEFT's defaults.</param>
    /// <exception cref="IOException">The files could not be written; the previous adapter, if any, is unchanged.</exception>
    /// <exception cref="InvalidOperationException">The adapters were unloaded.</exception>
    /// <exception cref="NotSupportedException">An adapter is of a <see cref="LoraLayer"/> type other than Linear, Embedding and Conv2d.</exception>
    public static void Save(LoraModel lora, string directory, AdapterSaveOptions? options = null) =>
        Save(lora, directory, options, afterStep: null);

    /// <summary>As the public overload, with <see cref="AdapterDirectory.Replace"/>'s failure hook for tests.</summary>
    internal static void Save(LoraModel lora, string directory, AdapterSaveOptions? options, Action<string>? afterStep)
    {
        ArgumentNullException.ThrowIfNull(lora);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        AdapterLayout layout = AdapterLayout.ForLoraModel(lora);
        Type modelType = lora.Model.GetType();
        PeftAdapterConfig config = PeftAdapterConfig.FromLoraConfig(lora.Config, options ?? new AdapterSaveOptions(),
            new PeftAutoMapping(modelType.Name, modelType.Namespace ?? ""));
        byte[] json = Encoding.UTF8.GetBytes(PeftConfigWriter.Write(config));

        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (AdapterSlot slot in layout.Slots)
            {
                var layer = lora.Layers[slot.Path];
                tensors.Add(new(slot.Key(AdapterTensorKind.LoraA), layer.LoraA.detach()));
                tensors.Add(new(slot.Key(AdapterTensorKind.LoraB), layer.LoraB.detach()));
                if (layout.UseDora)
                {
                    // Already in PEFT's shape: (out), (embedding_dim), or (1, out, 1, 1) for a Conv2d.
                    tensors.Add(new(slot.Key(AdapterTensorKind.Magnitude), layer.Magnitude!.detach()));
                }
            }
            // PEFT writes the tensors, then the config; inside the staging directory the order does not matter.
            AdapterDirectory.Replace(directory, staging =>
            {
                SafetensorsFile.Write(Path.Combine(staging, TensorsFileName), tensors, PeftMetadata);
                AtomicFile.Write(Path.Combine(staging, ConfigFileName), stream => stream.Write(json));
            }, afterStep);
        }
        finally
        {
            foreach (var entry in tensors) entry.Value.Dispose();
        }
    }

    /// <summary>
    /// Attaches the adapter saved in <paramref name="directory"/> (by DoraSharp or by PEFT) to
    /// <paramref name="model"/>, which must have the module names the adapter was trained on, and loads its
    /// weights; PEFT's <c>PeftModel.from_pretrained(model, directory, is_trainable=...)</c>.
    /// </summary>
    /// <param name="model">The base model, without adapters; adapted in place.</param>
    /// <param name="directory">The adapter directory.</param>
    /// <param name="isTrainable">
    /// False (PEFT's default) freezes the adapters too and puts the model in eval mode, for inference; true leaves
    /// the adapters trainable, to continue training.
    /// </param>
    /// <returns>The adapted model.</returns>
    /// <exception cref="AdapterFormatException">
    /// A file is missing or malformed: config JSON invalid, <c>peft_type</c> not "LORA", r &lt; 1, a PEFT option DoraSharp
    /// does not implement, a safetensors file that is truncated or inconsistent, a non-float dtype, a tensor shape
    /// that disagrees with r. The message names the file and the field or key.
    /// </exception>
    /// <exception cref="AdapterMismatchException">
    /// The adapter does not fit the model: target modules the model lacks, missing or unexpected keys, shapes that
    /// disagree with the layers. The message names the file and the key or field.
    /// </exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot replace it (as <see cref="LoraModel.Wrap"/>).</exception>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    /// <exception cref="IOException">A file cannot be read.</exception>
    public static LoraModel Load(nn.Module model, string directory, bool isTrainable = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        LoraConfig config = ReadLoraConfig(configPath);
        AdapterLayout layout = AdapterLayout.ForModel(model, config, configPath);
        using SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);

        // Everything is checked; from here on the model changes, and any failure undoes it.
        var requiresGrad = model.parameters().Select(p => (Parameter: p, Flag: p.requires_grad)).ToList();
        LoraModel lora;
        try
        {
            lora = LoraModel.Wrap(model, config);
        }
        catch (LoraConfigException e)
        {
            Restore(requiresGrad);
            throw new AdapterMismatchException(configPath, $"field \"target_modules\" does not fit the model: {e.Message}", "target_modules", e);
        }
        catch (RegexMatchTimeoutException e)
        {
            Restore(requiresGrad);
            throw new AdapterFormatException(configPath, $"field \"target_modules\": the regular expression took too long on module path {DisplayText.Quote(e.Input)}", e);
        }
        catch
        {
            Restore(requiresGrad);
            throw;
        }
        try
        {
            if (!lora.Layers.Keys.SequenceEqual(layout.Slots.Select(s => s.Path), StringComparer.Ordinal))
            {
                throw new InvalidOperationException(
                    $"Internal error: Wrap adapted [{string.Join(", ", lora.Layers.Keys)}] but the load checked [{string.Join(", ", layout.Slots.Select(s => s.Path))}].");
            }
            Copy(lora, layout, tensors);
            foreach (var layer in lora.Layers.Values.Distinct())
            {
                foreach (var (_, parameter) in layer.AdapterParameters()) parameter.requires_grad = isTrainable;
            }
        }
        catch
        {
            lora.Unload();
            Restore(requiresGrad);
            throw;
        }
        if (!isTrainable) model.eval(); // PEFT's from_pretrained: `if not is_trainable: self.eval()`
        return lora;
    }

    /// <summary>
    /// Loads the weights of the adapter in <paramref name="directory"/> into the existing adapters of
    /// <paramref name="lora"/>, which must have the same r, lora_alpha, use_dora and use_rslora and adapt exactly
    /// the modules the file holds. Dropout and init scheme may differ: they do not affect the weights.
    /// Nothing changes if it throws.
    /// </summary>
    /// <exception cref="AdapterFormatException">A file is missing or malformed (as for <see cref="Load"/>).</exception>
    /// <exception cref="AdapterMismatchException">The file's options, keys or shapes differ from <paramref name="lora"/>'s adapters.</exception>
    /// <exception cref="InvalidOperationException">The adapters are merged (unmerge first) or were unloaded.</exception>
    public static void LoadWeights(LoraModel lora, string directory)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (lora.IsMerged)
        {
            throw new InvalidOperationException("The adapters are merged into the base weights; Unmerge() before loading other adapter weights.");
        }
        AdapterLayout layout = AdapterLayout.ForLoraModel(lora);
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        LoraConfig config = ReadLoraConfig(configPath);
        CheckSameOptions(lora.Config, config, configPath);
        using SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);

        // Validated, so copy_ cannot fail on shape or dtype; keep the old values anyway to undo a failure midway.
        var parameters = lora.Layers.Values.Distinct().SelectMany(l => l.AdapterParameters().Select(p => p.Parameter)).ToList();
        var backup = parameters.Select(p => p.detach().clone()).ToList();
        try
        {
            Copy(lora, layout, tensors);
        }
        catch
        {
            using (no_grad())
            {
                for (int i = 0; i < parameters.Count; i++) parameters[i].copy_(backup[i]);
            }
            lora.InvalidateCaches();
            throw;
        }
        finally
        {
            backup.ForEach(t => t.Dispose());
        }
    }

    /// <summary>
    /// The <see cref="LoraConfig"/> the adapter in <paramref name="directory"/> is built from, after the same
    /// checks <see cref="Load"/> makes on <c>adapter_config.json</c>.
    /// </summary>
    /// <exception cref="AdapterFormatException">The directory or config file is missing, or the config is invalid or unsupported.</exception>
    public static LoraConfig ReadConfig(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string configPath = Path.Combine(directory, ConfigFileName);
        if (!File.Exists(configPath))
        {
            throw new AdapterFormatException(configPath, "the file does not exist; a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors");
        }
        return ReadLoraConfig(configPath);
    }

    private static LoraConfig ReadLoraConfig(string configPath)
    {
        LoraConfig config = PeftConfigReader.Read(configPath).ToLoraConfig();
        try
        {
            config.Validate();
        }
        catch (LoraConfigException e)
        {
            // The reader checks each field already; this is the backstop for LoraConfig's own rules.
            throw new AdapterFormatException(configPath, $"the config is not a valid LoRA config: {e.Message}", e);
        }
        return config;
    }

    private static void CheckSameOptions(LoraConfig have, LoraConfig file, string configPath)
    {
        void Check(string field, object mine, object theirs)
        {
            if (!Equals(mine, theirs))
            {
                throw new AdapterMismatchException(configPath,
                    $"field \"{field}\" is {Format(theirs)}, but the LoraModel's adapters have {Format(mine)}; load it onto the base model with LoadAdapter instead", field);
            }
        }
        Check("r", have.R, file.R);
        Check("lora_alpha", have.LoraAlpha, file.LoraAlpha);
        Check("use_dora", have.UseDora, file.UseDora);
        Check("use_rslora", have.UseRsLora, file.UseRsLora);
    }

    private static string Format(object value) => value switch
    {
        bool b => b ? "true" : "false",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private static void Copy(LoraModel lora, AdapterLayout layout, Dictionary<(string Path, AdapterTensorKind Kind), Tensor> tensors)
    {
        using (no_grad())
        {
            foreach (AdapterSlot slot in layout.Slots)
            {
                var layer = lora.Layers[slot.Path];
                // copy_ converts the file's dtype to the adapter's (float32 for a half-precision base, as PEFT's
                // autocast_adapter_dtype keeps it) without an intermediate copy.
                layer.LoraA.copy_(tensors[(slot.Path, AdapterTensorKind.LoraA)]);
                layer.LoraB.copy_(tensors[(slot.Path, AdapterTensorKind.LoraB)]);
                if (layout.UseDora) layer.Magnitude!.copy_(tensors[(slot.Path, AdapterTensorKind.Magnitude)]);
            }
        }
        lora.InvalidateCaches();
    }

    private static void Restore(List<(Parameter Parameter, bool Flag)> requiresGrad)
    {
        foreach ((Parameter parameter, bool flag) in requiresGrad) parameter.requires_grad = flag;
    }
}
