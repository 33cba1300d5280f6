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
/// reader sees the old pair or the new pair, never a mix (details on <see cref="AdapterDirectory"/>).</para>
/// <para><b>Loading</b> checks everything before it changes anything: the config (options DoraSharp does not
/// implement are refused by name), the safetensors structure, that the keys are exactly those the config and the
/// model call for, and every dtype and shape. Only then are the adapters attached and filled. A load that throws
/// leaves the model exactly as it was, and allocates at most the tensor file's size plus the adapters' own size,
/// whatever a header claims.</para>
/// <para>This class reads and writes files only: which modules an adapter adapts is the <see cref="InjectionPlan"/>'s
/// decision, and attaching it is <c>LoraModel</c>'s, whose <c>SaveAdapter</c>, <c>LoadAdapter</c> and
/// <c>LoadAdapterWeights</c> are the public doors (this class does not know <c>LoraModel</c>).</para>
/// </remarks>
public static class AdapterFiles
{
    /// <summary>The config file of an adapter directory (PEFT's <c>CONFIG_NAME</c>).</summary>
    public const string ConfigFileName = PeftAdapterConfig.FileName;

    /// <summary>The tensor file of an adapter directory (PEFT's <c>SAFETENSORS_WEIGHTS_NAME</c>).</summary>
    public const string TensorsFileName = AdapterDirectory.TensorsFileName;

    /// <summary>
    /// PEFT's name of the adapter <c>save_pretrained</c> writes into the directory itself (every other adapter goes
    /// into a sub-folder named after it); <c>LoraModel.DefaultAdapterName</c>.
    /// </summary>
    internal const string DefaultAdapterName = "default";

    private static readonly IReadOnlyDictionary<string, string> PeftMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>
    /// Writes <paramref name="adapters"/> to <paramref name="directory"/> as PEFT's <c>save_pretrained</c> does: "default"
    /// in the directory itself, any other adapter in a sub-folder named after it, the directory (or, without
    /// "default", each sub-folder) replaced atomically (<see cref="AdapterDirectory"/>).
    /// </summary>
    /// <param name="directory">The adapter directory to create or replace; its parents are created.</param>
    /// <param name="adapters">The adapters to write, with their live tensors.</param>
    /// <param name="options">Informational config fields (base model name, auto_mapping).</param>
    /// <param name="modelType">The adapted model's class, PEFT's <c>auto_mapping</c> default.</param>
    /// <param name="afterStep">Test hook of <see cref="AdapterDirectory.Replace"/>; null outside tests.</param>
    /// <exception cref="IOException">The files could not be written; the previous adapter, if any, is unchanged.</exception>
    internal static void Save(string directory, IReadOnlyList<AdapterState> adapters, AdapterSaveOptions options, Type modelType, Action<string>? afterStep = null)
    {
        var written = new List<(string Folder, byte[] Json, List<KeyValuePair<string, Tensor>> Tensors)>();
        try
        {
            foreach (var adapter in adapters)
            {
                PeftAdapterConfig config = PeftAdapterConfig.FromLoraConfig(adapter.Config, options,
                    new PeftAutoMapping(modelType.Name, modelType.Namespace ?? ""));
                byte[] json = Encoding.UTF8.GetBytes(PeftConfigWriter.Write(config));
                // PEFT's save_pretrained: "default" in the directory itself, any other adapter in a sub-folder named after it.
                written.Add((adapter.Name == DefaultAdapterName ? "" : adapter.Name, json, adapter.Tensors()));
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

    /// <summary>
    /// The config and tensor files of the adapter in <paramref name="directory"/>, with the config read and checked;
    /// the tensors are read later, against the plan the config gives (<see cref="Plan"/>).
    /// </summary>
    /// <exception cref="AdapterFormatException">A file is missing, not a regular file, or the config is invalid or unsupported.</exception>
    internal static AdapterSource Open(string directory)
    {
        (string configPath, string tensorsPath) = AdapterDirectory.Locate(directory);
        return new AdapterSource(configPath, tensorsPath, ReadLoraConfig(configPath));
    }

    /// <summary>
    /// The <see cref="InjectionPlan"/> of <paramref name="source"/>'s config on <paramref name="view"/>, with the plan's
    /// refusals worded for the file: a regex that runs too long or cannot be trusted is a format error of the config,
    /// targets or modules to save that do not fit the model a mismatch, both naming the config file and the field.
    /// </summary>
    /// <exception cref="AdapterFormatException">The target regular expression runs too long on the module paths, or meets a path it cannot be trusted on.</exception>
    /// <exception cref="AdapterMismatchException">The targets select no supported module of the model, or modules_to_save none.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer already has an adapter, or a module to save is reached by two paths.</exception>
    internal static InjectionPlan Plan(AdapterSource source, IReadOnlyList<(string Path, nn.Module Module)> view, RegexBudget budget)
    {
        LoraConfig config = source.Config;
        string configPath = source.ConfigPath;
        InjectionPlan plan;
        try
        {
            plan = InjectionPlan.Create(view, config, budget);
        }
        catch (LoraConfigException e)
        {
            throw InjectionRefusal(source, e, view.Count, budget);
        }
        if (plan.Targets.Count == 0)
        {
            var available = plan.Adaptable;
            var excluded = plan.Excluded.Where(m => LoraLayerFactory.IsSupported(m.Module)).Select(m => m.Path).ToList();
            string value = config.TargetModules is not null ? $"[{string.Join(", ", config.TargetModules.Take(20).Select(DisplayText.Quote))}]" : DisplayText.Quote(config.TargetModulesRegex!);
            throw new AdapterMismatchException(configPath,
                $"field \"target_modules\" ({value}) selects no {LoraLayerFactory.SupportedTypes} module of the model" +
                (excluded.Count > 0 ? $" that exclude_modules leaves (excluded: {string.Join(", ", excluded.Take(20))})" : "") +
                $": the adapter is for a different model. The model's {LoraLayerFactory.SupportedTypes} modules are: " +
                (available.Count == 0 ? "(none)" : string.Join(", ", available.Take(50)) + (available.Count > 50 ? $" … ({available.Count} in all)" : "")),
                key: "target_modules");
        }
        return plan;
    }

    /// <summary>
    /// A <see cref="LoraConfigException"/> met while planning or injecting the adapter of <paramref name="source"/>,
    /// worded for the file: the regex's timeout or untrusted path as a format error of <c>target_modules</c>, a
    /// modules_to_save or targets that do not fit the model as a mismatch naming the field.
    /// </summary>
    internal static Exception InjectionRefusal(AdapterSource source, LoraConfigException e, int paths, RegexBudget budget)
    {
        string configPath = source.ConfigPath;
        return e switch
        {
            { InnerException: RegexMatchTimeoutException timeout } => new AdapterFormatException(configPath,
                $"field \"target_modules\" ({DisplayText.Quote(source.Config.TargetModulesRegex ?? "")}): {InjectionPlan.RegexTimeoutMessage(timeout, paths, budget)}", timeout),
            // A module path the regex cannot be trusted on (a character beyond U+FFFF): the file's regex is refused.
            { Option: nameof(LoraConfig.TargetModulesRegex) } => new AdapterFormatException(configPath, $"field \"target_modules\": {e.Message}", e),
            { Option: nameof(LoraConfig.ModulesToSave) } => new AdapterMismatchException(configPath, $"field \"modules_to_save\" does not fit the model: {e.Message}", "modules_to_save", e),
            _ => new AdapterMismatchException(configPath, $"field \"target_modules\" does not fit the model: {e.Message}", "target_modules", e),
        };
    }

    /// <summary>
    /// The file's weights for <paramref name="mine"/>, an existing adapter: the file is first checked exactly as a
    /// load checks it on the model's base layers (<paramref name="filePlan"/>: config, targets, modules to save, keys,
    /// dtypes, shapes), so a file a load refuses is refused here with the same message; then it must fit the adapter:
    /// same r, lora_alpha, use_dora and use_rslora, the same modules adapted and trained in full.
    /// </summary>
    /// <exception cref="AdapterFormatException">A file is malformed.</exception>
    /// <exception cref="AdapterMismatchException">The file does not fit the model, or its options, modules, keys or shapes differ from the adapter's.</exception>
    internal static AdapterWeights ReadWeightsFor(AdapterState mine, AdapterSource source, InjectionPlan filePlan)
    {
        AdapterLayout fileLayout = AdapterLayout.ForPlan(filePlan);
        CheckSameOptions(mine.Config, source.Config, source.ConfigPath);
        return AdapterWeights.Read(source.TensorsPath, mine.Layout, tensors =>
        {
            AdapterTensorValidator.Validate(tensors, fileLayout, source.TensorsPath);
            AdapterTensorValidator.ValidateSavedModules(tensors, fileLayout, source.TensorsPath);
            CheckSameModules(mine.Layout, fileLayout, source.ConfigPath);
        });
    }

    /// <summary>
    /// The <see cref="LoraConfig"/> the adapter in <paramref name="directory"/> is built from, after the same
    /// checks <c>LoraModel.LoadAdapter</c> makes on <c>adapter_config.json</c>.
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
}
