using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The only place DoraSharp reaches into TorchSharp's private members (written against TorchSharp 0.107). PyTorch
/// lets a module's children and parameters be replaced by assignment; TorchSharp keeps them in private tables and
/// exposes no replacement, so adapter injection, unloading and parameter sharing rebind those tables here:
/// <list type="bullet">
/// <item><c>Module._internal_params</c>: a module's parameter table (register_parameter refuses a taken name);</item>
/// <item><c>Module._internal_submodules</c>: a module's child table (register_module refuses a taken name);</item>
/// <item><c>Sequential._modules</c>: the list Sequential.forward runs;</item>
/// <item>the private fields behind <c>Linear.weight</c>, <c>Conv2d.bias</c>, … that TorchSharp's own <c>.to()</c> rebinds.</item>
/// </list>
/// Each table is looked up through <see cref="RequireField"/>, which fails loudly, naming the TorchSharp version and the
/// missing field, when a TorchSharp update renamed it — instead of a silent no-op or a null reference later.
/// </summary>
internal static class TorchSharpInternals
{
    private const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;

    /// <summary>The loaded TorchSharp's assembly version, for error messages.</summary>
    internal static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>
    /// The private instance field <paramref name="name"/> of <paramref name="type"/>.
    /// </summary>
    /// <exception cref="MissingFieldException">The field does not exist in this TorchSharp version.</exception>
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "TorchSharp's own private fields, which the TorchSharp assembly keeps (it reflects over them itself).")]
    internal static FieldInfo RequireField(Type type, string name)
        => type.GetField(name, Private) ?? throw new MissingFieldException(
            $"DoraSharp needs the private field {type.FullName}.{name} of TorchSharp, which TorchSharp {TorchSharpVersion} does not have " +
            "(DoraSharp is written against TorchSharp 0.107). Use the TorchSharp version DoraSharp was built with, or report the version.");

    private static readonly Lazy<FieldInfo> ParametersField = new(() => RequireField(typeof(nn.Module), "_internal_params"));
    private static readonly Lazy<FieldInfo> SubmodulesField = new(() => RequireField(typeof(nn.Module), "_internal_submodules"));
    private static readonly Lazy<FieldInfo> SequentialField = new(() => RequireField(typeof(Sequential), "_modules"));

    /// <summary><paramref name="module"/>'s parameter table (name → parameter), in registration order.</summary>
    internal static TorchSharp.Utils.OrderedDict<string, Parameter> ParameterTable(nn.Module module)
        => ParametersField.Value.GetValue(module) as TorchSharp.Utils.OrderedDict<string, Parameter>
           ?? throw new MissingFieldException($"TorchSharp {TorchSharpVersion}: {typeof(nn.Module).FullName}._internal_params is not a parameter table.");

    /// <summary><paramref name="module"/>'s child table (name → module), in registration order.</summary>
    internal static TorchSharp.Utils.OrderedDict<string, nn.Module> SubmoduleTable(nn.Module module)
        => SubmodulesField.Value.GetValue(module) as TorchSharp.Utils.OrderedDict<string, nn.Module>
           ?? throw new MissingFieldException($"TorchSharp {TorchSharpVersion}: {typeof(nn.Module).FullName}._internal_submodules is not a module table.");

    /// <summary>The list <paramref name="sequential"/>'s forward runs (named_children reads another one, <c>_names</c>).</summary>
    internal static System.Collections.IList SequentialModules(Sequential sequential)
        => SequentialField.Value.GetValue(sequential) as System.Collections.IList
           ?? throw new MissingFieldException($"TorchSharp {TorchSharpVersion}: {typeof(Sequential).FullName}._modules is not a list.");

    /// <summary>
    /// Makes <paramref name="module"/> (a TorchSharp Linear, Embedding or Conv2d) hold <paramref name="value"/> as its parameter
    /// <paramref name="name"/> when it holds another object: its registered entry and the private field behind the property
    /// (Linear.weight …), whose setter would touch the old, possibly disposed, tensor — rebound as TorchSharp's own
    /// <c>.to()</c> does.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2075",
        Justification = "The fields of TorchSharp's Linear, Embedding or Conv2d that hold their parameters, which TorchSharp's own .to() rebinds the same way.")]
    internal static void RebindParameter(nn.Module module, string name, Parameter value)
    {
        const BindingFlags Fields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var old = module.get_parameter(name);
        if (ReferenceEquals(old, value)) return;
        ParameterTable(module)[name] = value;
        for (var t = module.GetType(); t is not null && t != typeof(nn.Module); t = t.BaseType)
            foreach (var field in t.GetFields(Fields))
                if (typeof(Tensor).IsAssignableFrom(field.FieldType) && ReferenceEquals(field.GetValue(module), old))
                    field.SetValue(module, value);
    }
}
