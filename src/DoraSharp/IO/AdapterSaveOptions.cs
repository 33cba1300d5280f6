namespace DoraSharp.IO;

/// <summary>
/// Informational fields of <c>adapter_config.json</c> that PEFT fills from the Python base model; none of them
/// changes how the adapter loads or computes.
/// </summary>
public sealed record AdapterSaveOptions
{
    /// <summary>
    /// PEFT's <c>base_model_name_or_path</c>: the Hub id or path of the base model, e.g. "bert-base-uncased".
    /// PEFT's <c>AutoPeftModel</c> classes load the base model from it; <c>PeftModel.from_pretrained</c> does not
    /// use it. Null (the default) is written as JSON null, as PEFT does for a model without a name.
    /// </summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>PEFT's <c>revision</c>: the base model's Hub revision, or null.</summary>
    public string? Revision { get; init; }

    /// <summary>
    /// PEFT's <c>auto_mapping</c>, which PEFT writes for a model without a task type, naming the Python class of
    /// the base model and the module it comes from. By default the .NET class name and namespace of the saved
    /// model are written; set it to name the Python class that mirrors your model (e.g. "MLP" in "__main__").
    /// </summary>
    public PeftAutoMapping? AutoMapping { get; init; }

    /// <summary>
    /// The adapters to save, by name (PEFT's <c>selected_adapters</c>); null saves them all. As in PEFT, the
    /// adapter named "default" goes into the directory itself and any other into a sub-folder named after it.
    /// </summary>
    public IReadOnlyList<string>? SelectedAdapters { get; init; }
}

/// <summary>The <c>auto_mapping</c> object of <c>adapter_config.json</c>.</summary>
/// <param name="BaseModelClass">PEFT's <c>base_model_class</c>: the base model's class name.</param>
/// <param name="ParentLibrary">PEFT's <c>parent_library</c>: the module that defines the class.</param>
public sealed record PeftAutoMapping(string BaseModelClass, string ParentLibrary);
