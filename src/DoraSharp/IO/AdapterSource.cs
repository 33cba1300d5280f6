namespace DoraSharp.IO;

/// <summary>An adapter directory found and its config read and checked; its tensors are read against a plan.</summary>
/// <param name="ConfigPath">The <c>adapter_config.json</c>.</param>
/// <param name="TensorsPath">The <c>adapter_model.safetensors</c>.</param>
/// <param name="Config">The adapter's options, as the config file gives them.</param>
internal sealed record AdapterSource(string ConfigPath, string TensorsPath, LoraConfig Config);
