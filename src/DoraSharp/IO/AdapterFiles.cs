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
        options ??= new AdapterSaveOptions();
        var names = options.SelectedAdapters ?? lora.AdapterNames;
        if (names.Count == 0) throw new ArgumentException("AdapterSaveOptions.SelectedAdapters is empty; name at least one adapter, or leave it null to save them all.", nameof(options));
        // LayersOf names the adapters there are when one is unknown.
        var pairs = names.Distinct(StringComparer.Ordinal).Select(name => (Name: name, Layers: lora.LayersOf(name))).ToList();

        var written = new List<(string Folder, byte[] Json, List<KeyValuePair<string, Tensor>> Tensors)>();
        try
        {
            foreach (var (name, _) in pairs)
            {
                var (json, tensors) = Serialize(lora, name, options);
                // PEFT's save_pretrained: "default" in the directory itself, any other adapter in a sub-folder named after it.
                written.Add((name == LoraModel.DefaultAdapterName ? "" : name, json, tensors));
            }
            void Write(string folder, byte[] json, List<KeyValuePair<string, Tensor>> tensors)
            {
                // PEFT writes the tensors, then the config; inside the staging directory the order does not matter.
                Directory.CreateDirectory(folder);
                SafetensorsFile.Write(Path.Combine(folder, TensorsFileName), tensors, PeftMetadata);
                AtomicFile.Write(Path.Combine(folder, ConfigFileName), stream => stream.Write(json));
            }
            if (written.Any(w => w.Folder.Length == 0))
            {
                // With the default adapter the directory and its adapter sub-folders are replaced as one whole.
                AdapterDirectory.Replace(directory, staging =>
                {
                    foreach (var (folder, json, tensors) in written) Write(Path.Combine(staging, folder), json, tensors);
                }, afterStep, written.Where(w => w.Folder.Length > 0).Select(w => w.Folder).ToList());
            }
            else
            {
                // Only named adapters: each sub-folder is replaced on its own and the directory's other contents stay (as in PEFT).
                foreach (var (folder, json, tensors) in written)
                    AdapterDirectory.Replace(Path.Combine(directory, folder), staging => Write(staging, json, tensors), afterStep);
            }
        }
        finally
        {
            foreach (var entry in written.SelectMany(w => w.Tensors)) entry.Value.Dispose();
        }
    }

    /// <summary>The config text and tensors (detached views of the live ones; dispose them) PEFT writes for one adapter.</summary>
    private static (byte[] Json, List<KeyValuePair<string, Tensor>> Tensors) Serialize(LoraModel lora, string adapterName, AdapterSaveOptions options)
    {
        AdapterLayout layout = AdapterLayout.ForLoraModel(lora, adapterName);
        Type modelType = lora.Model.GetType();
        PeftAdapterConfig config = PeftAdapterConfig.FromLoraConfig(lora.Configs[adapterName], options,
            new PeftAutoMapping(modelType.Name, modelType.Namespace ?? ""));
        byte[] json = Encoding.UTF8.GetBytes(PeftConfigWriter.Write(config));
        var layers = lora.LayersOf(adapterName);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (AdapterSlot slot in layout.Slots)
        {
            var layer = layers[slot.Path];
            tensors.Add(new(slot.Key(AdapterTensorKind.LoraA), layer.LoraA.detach()));
            tensors.Add(new(slot.Key(AdapterTensorKind.LoraB), layer.LoraB.detach()));
            if (layout.UseDora)
            {
                // Already in PEFT's shape: (out), (embedding_dim), or (1, out, 1, 1) for a Conv2d.
                tensors.Add(new(slot.Key(AdapterTensorKind.Magnitude), layer.Magnitude!.detach()));
            }
        }
        // PEFT's ModulesToSaveWrapper.adapter_state_dict: the adapter's copy of the module, under the module's own names.
        foreach (SavedModuleSlot module in layout.SavedModules)
        {
            foreach (var (name, value) in lora.ModuleToSaveValues(adapterName, module.Path))
                tensors.Add(new(module.Key(name), value.detach()));
        }
        return (json, tensors);
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
    /// <param name="adapterName">The name the adapter gets (PEFT's <c>adapter_name</c>).</param>
    public static LoraModel Load(nn.Module model, string directory, bool isTrainable = false, string adapterName = LoraModel.DefaultAdapterName)
        => LoadWithBudget(model, directory, isTrainable, adapterName, new RegexBudget());

    /// <summary>As the public overload, with the regex time budget of the whole load given (tests).</summary>
    internal static LoraModel LoadWithBudget(nn.Module model, string directory, bool isTrainable, string adapterName, RegexBudget budget)
    {
        ArgumentNullException.ThrowIfNull(model);
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        LoraConfig config = ReadLoraConfig(configPath);
        // One regex time budget for the whole load: the layout check and Wrap below match the same paths.
        AdapterLayout layout = AdapterLayout.ForModel(model, config, configPath, budget: budget);
        using SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);
        var saved = AdapterTensorValidator.ValidateSavedModules(content.Tensors, layout, tensorsPath);

        // Everything is checked; from here on the model changes, and any failure undoes it.
        var requiresGrad = model.parameters().Select(p => (Parameter: p, Flag: p.requires_grad)).ToList();
        LoraModel lora;
        try
        {
            lora = LoraModel.WrapWithBudget(model, config, adapterName, budget);
        }
        catch (LoraConfigException e) when (e.InnerException is RegexMatchTimeoutException timeout)
        {
            Restore(requiresGrad);
            throw AdapterLayout.RegexTimeout(configPath, config, timeout, layout.Modules.Count, budget);
        }
        catch (LoraConfigException e)
        {
            Restore(requiresGrad);
            throw new AdapterMismatchException(configPath, $"field \"target_modules\" does not fit the model: {e.Message}", "target_modules", e);
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
            Copy(lora, adapterName, layout, tensors, saved);
            lora.SetTrainable(adapterName, isTrainable);
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
    /// Adds the adapter saved in <paramref name="directory"/> to <paramref name="lora"/> under <paramref name="adapterName"/>
    /// and loads its weights; PEFT's <c>PeftModel.load_adapter(directory, adapter_name, is_trainable)</c>. The adapter is
    /// built on the base layers (whatever the other adapters target) and, as in PEFT, not activated. Everything is
    /// checked before anything changes; a failure leaves <paramref name="lora"/> as it was.
    /// </summary>
    /// <exception cref="ArgumentException">The name is invalid or taken.</exception>
    /// <exception cref="AdapterFormatException">A file is missing or malformed (as for <see cref="Load"/>).</exception>
    /// <exception cref="AdapterMismatchException">The adapter does not fit the model (as for <see cref="Load"/>).</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged, or the adapters were unloaded.</exception>
    public static void LoadInto(LoraModel lora, string directory, string adapterName, bool isTrainable = false)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (lora.AdapterNames.Contains(adapterName, StringComparer.Ordinal))
            throw new ArgumentException($"An adapter named '{adapterName}' exists already (adapters: {string.Join(", ", lora.AdapterNames)}); choose another name or DeleteAdapter it first.", nameof(adapterName));
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        LoraConfig config = ReadLoraConfig(configPath);
        var budget = new RegexBudget();
        AdapterLayout layout = AdapterLayout.ForModel(lora.Model, config, configPath, lora.BaseView(), budget);
        using SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);
        var saved = AdapterTensorValidator.ValidateSavedModules(content.Tensors, layout, tensorsPath);

        try
        {
            lora.AddAdapterWithBudget(adapterName, config, budget);
        }
        catch (LoraConfigException e) when (e.InnerException is RegexMatchTimeoutException timeout)
        {
            throw AdapterLayout.RegexTimeout(configPath, config, timeout, layout.Modules.Count, budget);
        }
        catch (LoraConfigException e)
        {
            throw new AdapterMismatchException(configPath, $"field \"target_modules\" does not fit the model: {e.Message}", "target_modules", e);
        }
        try
        {
            Copy(lora, adapterName, layout, tensors, saved);
            lora.SetTrainable(adapterName, isTrainable);
        }
        catch
        {
            lora.DeleteAdapter(adapterName);
            throw;
        }
        if (!isTrainable) lora.Model.eval(); // PEFT's load_adapter: `if not is_trainable: self.eval()`
    }

    /// <summary>
    /// Loads the weights of the adapter in <paramref name="directory"/> into the existing adapters of
    /// <paramref name="lora"/>, which must have the same r, lora_alpha, use_dora and use_rslora and adapt exactly
    /// the modules the file's config selects (target_modules, exclude_modules, modules_to_save). Dropout and init
    /// scheme may differ: they do not affect the weights. Nothing changes if it throws.
    /// </summary>
    /// <remarks>
    /// The file is first checked exactly as <see cref="Load"/> checks it on this model's base layers — config, targets,
    /// modules to save, keys, dtypes, shapes, values — with the same refusals and messages, so a file <see cref="Load"/>
    /// refuses is never loaded here; then it must fit the existing adapters.
    /// </remarks>
    /// <exception cref="AdapterFormatException">A file is missing or malformed (as for <see cref="Load"/>).</exception>
    /// <exception cref="AdapterMismatchException">The file does not fit the model (as for <see cref="Load"/>), or its options, modules, keys or shapes differ from <paramref name="lora"/>'s adapters.</exception>
    /// <exception cref="InvalidOperationException">The adapters are merged (unmerge first) or were unloaded.</exception>
    public static void LoadWeights(LoraModel lora, string directory)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (lora.IsMerged)
        {
            throw new InvalidOperationException("The adapters are merged into the base weights; Unmerge() before loading other adapter weights.");
        }
        AdapterLayout layout = AdapterLayout.ForLoraModel(lora, lora.ActiveAdapter);
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        LoraConfig config = ReadLoraConfig(configPath);
        // The checks Load makes, on the base layers under the adapters: a file Load refuses is refused here with the
        // same message (its target_modules and modules_to_save are not ignored).
        AdapterLayout fileLayout = AdapterLayout.ForModel(lora.Model, config, configPath, lora.BaseView(), new RegexBudget());
        CheckSameOptions(lora.Config, config, configPath);
        using SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        AdapterTensorValidator.Validate(content.Tensors, fileLayout, tensorsPath);
        AdapterTensorValidator.ValidateSavedModules(content.Tensors, fileLayout, tensorsPath);
        CheckSameModules(layout, fileLayout, configPath);
        var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);
        var saved = AdapterTensorValidator.ValidateSavedModules(content.Tensors, layout, tensorsPath);

        // Validated, so copy_ cannot fail on shape or dtype; keep the old values anyway to undo a failure midway.
        var parameters = lora.Layers.Values.Distinct().SelectMany(l => l.AdapterParameters().Select(p => p.Parameter))
            .Concat(layout.SavedModules.SelectMany(m => lora.ModuleToSaveValues(lora.ActiveAdapter, m.Path).Values))
            .ToList();
        var backup = parameters.Select(p => p.detach().clone()).ToList();
        try
        {
            Copy(lora, lora.ActiveAdapter, layout, tensors, saved);
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
        RegularFile.Check(configPath, problem => new AdapterFormatException(configPath, problem));
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

    /// <summary>
    /// The modules the file's config selects in this model must be the ones the LoraModel's adapter adapts and trains in
    /// full; a file whose tensors fit only because its config is ignored would load into modules it does not name.
    /// </summary>
    private static void CheckSameModules(AdapterLayout mine, AdapterLayout file, string configPath)
    {
        static string List(IEnumerable<string> paths) => "[" + string.Join(", ", paths.Take(20)) + "]";
        var myPaths = mine.Slots.Select(s => s.Path).ToList();
        var filePaths = file.Slots.Select(s => s.Path).ToList();
        if (!myPaths.SequenceEqual(filePaths, StringComparer.Ordinal))
        {
            throw new AdapterMismatchException(configPath,
                $"field \"target_modules\" (with exclude_modules and modules_to_save) selects {List(filePaths)} in this model, but the LoraModel's " +
                $"adapter adapts {List(myPaths)}; load it onto the base model with LoadAdapter instead", "target_modules");
        }
        var mySaved = mine.SavedModules.Select(m => m.Path).ToList();
        var fileSaved = file.SavedModules.Select(m => m.Path).ToList();
        if (!mySaved.SequenceEqual(fileSaved, StringComparer.Ordinal))
        {
            throw new AdapterMismatchException(configPath,
                $"field \"modules_to_save\" selects {List(fileSaved)} in this model, but the LoraModel's adapter trains {List(mySaved)} in full; " +
                "load it onto the base model with LoadAdapter instead", "modules_to_save");
        }
    }

    private static string Format(object value) => value switch
    {
        bool b => b ? "true" : "false",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private static void Copy(LoraModel lora, string adapterName, AdapterLayout layout,
        Dictionary<(string Path, AdapterTensorKind Kind), Tensor> tensors, Dictionary<(string Path, string Name), Tensor> saved)
    {
        var layers = lora.LayersOf(adapterName);
        using (no_grad())
        {
            foreach (AdapterSlot slot in layout.Slots)
            {
                var layer = layers[slot.Path];
                // copy_ converts the file's dtype to the adapter's (float32 for a half-precision base, as PEFT's
                // autocast_adapter_dtype keeps it) without an intermediate copy.
                layer.LoraA.copy_(tensors[(slot.Path, AdapterTensorKind.LoraA)]);
                layer.LoraB.copy_(tensors[(slot.Path, AdapterTensorKind.LoraB)]);
                if (layout.UseDora) layer.Magnitude!.copy_(tensors[(slot.Path, AdapterTensorKind.Magnitude)]);
            }
            foreach (SavedModuleSlot module in layout.SavedModules)
            {
                var values = lora.ModuleToSaveValues(adapterName, module.Path);
                foreach (var name in module.Entries.Keys) values[name].copy_(saved[(module.Path, name)]);
            }
        }
        lora.InvalidateCaches();
    }

    private static void Restore(List<(Parameter Parameter, bool Flag)> requiresGrad)
    {
        foreach ((Parameter parameter, bool flag) in requiresGrad) parameter.requires_grad = flag;
    }
}
