using TorchSharp;

namespace DoraSharp.IO;

/// <summary>
/// Checks the tensors of <c>adapter_model.safetensors</c> against an <see cref="AdapterLayout"/>: exactly the
/// expected keys, floating-point dtypes, and the shapes r and the layers give. Nothing is changed or allocated
/// beyond what the file already holds.
/// </summary>
/// <remarks>
/// PEFT's own loader is lenient here: <c>set_peft_model_state_dict</c> calls <c>load_state_dict(strict=False)</c>,
/// so a missing key leaves that adapter at its initial values and an unexpected key is skipped, both with only a
/// warning. DoraSharp refuses both, so a file for another model never loads partially.
/// </remarks>
internal static class AdapterTensorValidator
{
    private const int MaxListed = 5;

    private static readonly torch.ScalarType[] FloatTypes =
        [torch.ScalarType.Float16, torch.ScalarType.BFloat16, torch.ScalarType.Float32, torch.ScalarType.Float64];

    /// <summary>
    /// The file's tensor for each slot path and kind, after every check. The tensors still belong to
    /// <paramref name="tensors"/>.
    /// </summary>
    /// <exception cref="AdapterMismatchException">A key is missing or unexpected, or a shape disagrees with its layer.</exception>
    /// <exception cref="AdapterFormatException">A dtype is not floating point, or a shape disagrees with r.</exception>
    public static Dictionary<(string Path, AdapterTensorKind Kind), torch.Tensor> Validate(
        IReadOnlyDictionary<string, torch.Tensor> tensors, AdapterLayout layout, string tensorsPath)
    {
        var slots = layout.Slots.ToDictionary(s => s.Path, StringComparer.Ordinal);
        var kinds = layout.Kinds.ToHashSet();

        var savedKeys = layout.SavedModules.SelectMany(m => m.Entries.Keys.Select(m.Key)).ToHashSet(StringComparer.Ordinal);
        var unexpected = new List<(string Key, string Why)>();
        foreach (string key in tensors.Keys)
        {
            if (savedKeys.Contains(key)) continue;
            if (Unexpected(key, layout, slots, kinds) is { } why) unexpected.Add((key, why));
        }
        if (unexpected.Count > 0)
        {
            (string key, string why) = unexpected[0];
            throw new AdapterMismatchException(tensorsPath,
                $"unexpected key {DisplayText.Quote(key)}: {why}{More(unexpected.Select(u => u.Key), "unexpected keys")}", key);
        }

        var found = new Dictionary<(string, AdapterTensorKind), torch.Tensor>();
        var missing = new List<(string Key, AdapterSlot Slot)>();
        foreach (AdapterSlot slot in layout.Slots)
        {
            foreach (AdapterTensorKind kind in layout.Kinds)
            {
                string key = slot.Key(kind);
                if (tensors.TryGetValue(key, out torch.Tensor? tensor)) found[(slot.Path, kind)] = tensor;
                else missing.Add((key, slot));
            }
        }
        if (missing.Count > 0)
        {
            (string key, AdapterSlot slot) = missing[0];
            throw new AdapterMismatchException(tensorsPath,
                $"missing key {DisplayText.Quote(key)}: adapter_config.json targets {slot.Kind} module '{slot.Path}', " +
                $"so the file must hold its {string.Join(", ", layout.Kinds.Select(slot.Name))}" +
                $"{More(missing.Select(m => m.Key), "missing keys")}", key);
        }

        foreach (AdapterSlot slot in layout.Slots)
        {
            foreach (AdapterTensorKind kind in layout.Kinds)
            {
                CheckTensor(slot.Key(kind), found[(slot.Path, kind)], slot, kind, layout, tensorsPath);
            }
        }
        CheckTiedSlotsAgree(found, layout, tensorsPath);
        return found;
    }

    /// <summary>
    /// The file's tensors of the <c>modules_to_save</c> modules by (module path, state-dict name), after checking that
    /// every entry of each module is there with the module's own shape and a dtype of its kind (floating point for
    /// floating-point entries, the same integer type otherwise). Call after <see cref="Validate"/>.
    /// </summary>
    /// <exception cref="AdapterMismatchException">An entry is missing or has another shape.</exception>
    /// <exception cref="AdapterFormatException">An entry has a dtype of another kind.</exception>
    public static Dictionary<(string Path, string Name), torch.Tensor> ValidateSavedModules(
        IReadOnlyDictionary<string, torch.Tensor> tensors, AdapterLayout layout, string tensorsPath)
    {
        var found = new Dictionary<(string, string), torch.Tensor>();
        foreach (SavedModuleSlot module in layout.SavedModules)
        {
            foreach (var (name, (shape, dtype)) in module.Entries)
            {
                string key = module.Key(name);
                if (!tensors.TryGetValue(key, out torch.Tensor? tensor))
                {
                    throw new AdapterMismatchException(tensorsPath,
                        $"missing key {DisplayText.Quote(key)}: adapter_config.json lists module '{module.Path}' in modules_to_save, so the file must hold " +
                        $"its whole state ({string.Join(", ", module.Entries.Keys)})", key);
                }
                bool wantFloat = FloatTypes.Contains(dtype);
                if (wantFloat ? !FloatTypes.Contains(tensor.dtype) : tensor.dtype != dtype)
                {
                    throw new AdapterFormatException(tensorsPath,
                        $"tensor {DisplayText.Quote(key)} has dtype {SafetensorsDtype.FromScalarType(tensor.dtype)?.Name ?? tensor.dtype.ToString()}, but module '{module.Path}''s {name} is {dtype}");
                }
                if (!tensor.shape.SequenceEqual(shape))
                {
                    throw new AdapterMismatchException(tensorsPath,
                        $"tensor {DisplayText.Quote(key)} has shape {Shape(tensor.shape)}, but module '{module.Path}''s {name} has shape {Shape(shape)}: the adapter is for a module of another size", key);
                }
                if (wantFloat) CheckFinite(key, tensor, dtype, tensorsPath);
                found[(module.Path, name)] = tensor;
            }
        }
        return found;
    }

    private static string? Unexpected(string key, AdapterLayout layout, Dictionary<string, AdapterSlot> slots, HashSet<AdapterTensorKind> kinds)
    {
        if (!AdapterKeys.TryParse(key, out string path, out AdapterTensorKind kind, out string name))
        {
            return key.StartsWith(AdapterKeys.Prefix, StringComparison.Ordinal)
                ? $"it is not a LoRA tensor (PEFT's LoRA keys end in {AdapterKeys.AllNames}); a module's own weights belong in an adapter file only when adapter_config.json lists the module in modules_to_save"
                : $"PEFT's adapter keys start with '{AdapterKeys.Prefix}' (the user model's path inside a PeftModel)";
        }
        if (slots.TryGetValue(path, out AdapterSlot? slot))
        {
            if (name != slot.Name(kind)) return WrongName(slot, kind, name);
            return kinds.Contains(kind)
                ? null
                : "it is a DoRA magnitude, but adapter_config.json has \"use_dora\": false";
        }
        if (layout.SavedModules.FirstOrDefault(m => InjectionPlan.IsWithin(path, m.Path)) is { } saved)
        {
            return $"module {DisplayText.Quote(path)} is {(saved.Path == path ? "" : $"inside {DisplayText.Quote(saved.Path)}, ")}listed in adapter_config.json's modules_to_save, which is trained in full and never carries a LoRA adapter";
        }
        if (!layout.Modules.TryGetValue(path, out var module))
        {
            return $"the model has no module {DisplayText.Quote(path)}: the adapter is for a different architecture";
        }
        return LoraLayerFactory.IsSupported(module)
            ? $"module {DisplayText.Quote(path)} is not selected by adapter_config.json's target_modules/exclude_modules"
            : $"module {DisplayText.Quote(path)} is a {module.GetType().Name}; only {LoraLayerFactory.SupportedTypes} modules carry adapters";
    }

    private static void CheckTensor(string key, torch.Tensor tensor, AdapterSlot slot, AdapterTensorKind kind, AdapterLayout layout, string tensorsPath)
    {
        if (!FloatTypes.Contains(tensor.dtype))
        {
            throw new AdapterFormatException(tensorsPath,
                $"tensor {DisplayText.Quote(key)} has dtype {SafetensorsDtype.FromScalarType(tensor.dtype)?.Name ?? tensor.dtype.ToString()}; adapter weights must be floating point (F16, BF16, F32 or F64)");
        }
        long[] expected = layout.ExpectedShape(slot, kind);
        long[] actual = tensor.shape;
        if (actual.SequenceEqual(expected))
        {
            CheckFinite(key, tensor, slot.AdapterDType, tensorsPath);
            return;
        }

        string what = $"PEFT's {slot.Name(kind)} for {slot.Kind} module '{slot.Path}' {slot.Sizes} has shape {Shape(expected)}";
        int rankAxis = AdapterLayout.RankAxis(kind);
        bool onlyRankDiffers = actual.Length == expected.Length && rankAxis >= 0
            && Enumerable.Range(0, expected.Length).All(i => i == rankAxis || actual[i] == expected[i]);
        if (onlyRankDiffers)
        {
            throw new AdapterFormatException(tensorsPath,
                $"tensor {DisplayText.Quote(key)} has shape {Shape(actual)}, which disagrees with \"r\": {layout.R} in adapter_config.json: {what}");
        }
        throw new AdapterMismatchException(tensorsPath,
            $"tensor {DisplayText.Quote(key)} has shape {Shape(actual)}, but {what}: the adapter is for a layer of another size", key);
    }

    /// <summary>
    /// Refuses a tensor with a NaN or infinite value, or a finite one that becomes infinite in
    /// <paramref name="target"/> (a float64 value beyond float32's 3.4e38 loaded into a float32 adapter). Such an
    /// adapter makes every output it touches NaN or infinite; PEFT would load it and compute garbage, DoraSharp
    /// refuses it at the door. Converts one tensor at a time, so at most one tensor's worth is allocated.
    /// </summary>
    private static void CheckFinite(string key, torch.Tensor tensor, torch.ScalarType target, string tensorsPath)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        torch.Tensor converted = tensor.dtype == target || !FloatTypes.Contains(target) ? tensor : tensor.to(target);
        torch.Tensor finite = converted.isfinite();
        if (finite.all().item<bool>()) return;
        long index = finite.logical_not().flatten().nonzero()[0, 0].item<long>();
        double original = tensor.flatten()[index].to(torch.ScalarType.Float64).item<double>();
        string value = original.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        string why = double.IsFinite(original)
            ? $"{value}, which overflows the adapter's dtype {target} (its values must fit: the adapter computes in {target})"
            : $"{value}; adapter weights must be finite (a NaN or infinite weight makes every output it reaches NaN or infinite)";
        throw new AdapterFormatException(tensorsPath,
            $"tensor {DisplayText.Quote(key)} holds at flat index {index} the value {why}");
    }

    /// <summary>
    /// A module reached by two paths (weight tying) has one adapter, and PyTorch's state dict lists it under both
    /// paths; the two copies in the file must agree, or the file means two things.
    /// </summary>
    private static void CheckTiedSlotsAgree(Dictionary<(string, AdapterTensorKind), torch.Tensor> found, AdapterLayout layout, string tensorsPath)
    {
        foreach (var group in layout.Slots.GroupBy(s => s.Layer, ReferenceEqualityComparer.Instance).Where(g => g.Count() > 1))
        {
            AdapterSlot first = group.First();
            foreach (AdapterSlot other in group.Skip(1))
            {
                foreach (AdapterTensorKind kind in layout.Kinds)
                {
                    torch.Tensor a = found[(first.Path, kind)], b = found[(other.Path, kind)];
                    if (a.dtype != b.dtype || !a.allclose(b, rtol: 0, atol: 0, equal_nan: true))
                    {
                        string key = other.Key(kind);
                        throw new AdapterFormatException(tensorsPath,
                            $"tensor {DisplayText.Quote(key)} differs from {DisplayText.Quote(first.Key(kind))}, but both paths reach the same module (tied weights), which has one adapter");
                    }
                }
            }
        }
    }

    /// <summary>
    /// Why a factor named for another layer type (lora_A.weight on an Embedding, lora_embedding_A on a Linear or
    /// Conv2d) is refused: PEFT's <c>load_state_dict(strict=False)</c> would skip it and leave that factor at its init.
    /// </summary>
    private static string WrongName(AdapterSlot slot, AdapterTensorKind kind, string name)
    {
        string others = slot.Type == AdapterLayerType.Embedding ? "Linear and Conv2d modules" : "Embedding modules";
        string why = slot.Type == AdapterLayerType.Embedding ? " (PEFT keeps them in a ParameterDict, so without .weight)" : "";
        return $"module {DisplayText.Quote(slot.Path)} is {Article(slot.Kind)} {slot.Kind}, for which PEFT names this tensor " +
            $"{DisplayText.Quote(slot.Key(kind))}: its factors are {slot.Name(AdapterTensorKind.LoraA)} and {slot.Name(AdapterTensorKind.LoraB)}{why}; " +
            $"{name} is the name for {others}";
    }

    private static string Article(string word) => "AEIOU".Contains(word[0]) ? "an" : "a";

    private static string Shape(long[] shape) => SafetensorsHeaderParser.FormatShape(shape);

    private static string More(IEnumerable<string> keys, string what)
    {
        var list = keys.ToList();
        return list.Count <= 1
            ? ""
            : $" ({list.Count} {what} in all: {string.Join(", ", list.Take(MaxListed).Select(DisplayText.Quote))}{(list.Count > MaxListed ? ", …" : "")})";
    }
}
