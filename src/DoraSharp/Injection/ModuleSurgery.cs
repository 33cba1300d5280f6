using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// Replaces a module inside a TorchSharp module tree, in place, so the caller's model object stays the
/// one they hold. Its reads of TorchSharp's private fields go through <see cref="TorchSharpInternals"/> (the one place
/// that knows them and checks they exist); the only reflection left here reads the user's own module class
/// (<see cref="InstanceFields"/>), as TorchSharp's RegisterComponents does. TorchSharp gives no public way to swap a
/// child: <c>Linear</c> is sealed, <c>Sequential</c> keeps its children in private lists, <c>ModuleList</c>
/// and <c>ModuleDict</c> setters do not re-register, and a user module calls its children through its own
/// fields. So the parent's container slot or field is rewritten and the child re-registered under the
/// same name. Anything that cannot be rewritten reliably is refused with an
/// <see cref="AdapterInjectionException"/> that says how to change the model — never a silent no-op.
/// </summary>
internal static class ModuleSurgery
{
    /// <summary>Every module below <paramref name="root"/> with its dotted path, depth first, root excluded.</summary>
    public static List<(string Path, nn.Module Module)> Descendants(nn.Module root)
    {
        var result = new List<(string, nn.Module)>();
        void Walk(nn.Module m, string prefix)
        {
            foreach (var (name, child) in m.named_children())
            {
                var path = prefix.Length == 0 ? name : prefix + "." + name;
                result.Add((path, child));
                Walk(child, path);
            }
        }
        Walk(root, "");
        return result;
    }

    /// <summary>The module at a dotted path below <paramref name="root"/> ("" is the root itself).</summary>
    public static nn.Module Find(nn.Module root, string path)
    {
        var module = root;
        if (path.Length == 0) return module;
        foreach (var part in path.Split('.'))
        {
            module = module.named_children().FirstOrDefault(c => c.name == part).module
                     ?? throw new AdapterInjectionException($"Module '{path}' not found: '{part}' is not a child of '{module.GetName()}'.");
        }
        return module;
    }

    /// <summary>Puts <paramref name="replacement"/> where <paramref name="path"/>'s module is now.</summary>
    public static void Replace(nn.Module root, string path, nn.Module current, nn.Module replacement)
    {
        var cut = path.LastIndexOf('.');
        var parentPath = cut < 0 ? "" : path[..cut];
        var name = cut < 0 ? path : path[(cut + 1)..];
        var parent = Find(root, parentPath);
        var parentType = parent.GetType();

        if (parent is Sequential sequential)
            ReplaceInSequential(sequential, path, name, current, replacement);
        else if (IsGeneric(parentType, typeof(ModuleList<>)) || IsGeneric(parentType, typeof(ModuleDict<>)))
            ReplaceInContainer(parent, path, name, replacement);
        else
            ReplaceInFields(parent, path, current, replacement);

        Reregister(parent, name, replacement);
        var now = parent.named_children().FirstOrDefault(c => c.name == name).module;
        if (!ReferenceEquals(now, replacement))
            throw new AdapterInjectionException($"Module '{path}': re-registering the adapter under '{name}' in {Describe(parent)} did not take effect.");
    }

    /// <summary>
    /// register_module refuses a name that is taken, and PyTorch-style replacement (same name, same place in
    /// the state dict's order) has no public API: overwrite the entry of the parent's submodule table.
    /// </summary>
    private static void Reregister(nn.Module parent, string name, nn.Module replacement)
    {
        var table = TorchSharpInternals.SubmoduleTable(parent);
        if (table.ContainsKey(name)) table[name] = replacement;
        else parent.register_module(name, replacement);
    }

    private static void ReplaceInSequential(Sequential parent, string path, string name, nn.Module current, nn.Module replacement)
    {
        // Sequential.forward iterates a private List<IModule<Tensor,Tensor>>; named_children reads _names.
        var modules = TorchSharpInternals.SequentialModules(parent);
        if (replacement is not nn.IModule<Tensor, Tensor>)
            throw new AdapterInjectionException(
                $"Module '{path}' sits in a Sequential, which runs only Module<Tensor, Tensor> children, but its replacement " +
                $"is a {replacement.GetType().Name}; build the model from a custom module with a field of the replacement's type instead.");
        var index = -1;
        for (var i = 0; i < modules.Count; i++)
            if (ReferenceEquals(modules[i], current)) { index = i; break; }
        if (index < 0)
            throw new AdapterInjectionException($"Module '{path}' is registered in its Sequential but not in the list it runs.");
        modules[index] = replacement;
    }

    private static void ReplaceInContainer(nn.Module parent, string path, string name, nn.Module replacement)
    {
        // The containers that can hold an adapter layer (a Module<Tensor, Tensor>), matched by type rather than by
        // reflection on their indexers, which trimming may remove (issue 13: the library is trimming/AOT-clean).
        var index = IsGeneric(parent.GetType(), typeof(ModuleList<>)) ? int.Parse(name, System.Globalization.CultureInfo.InvariantCulture) : -1;
        switch (parent, replacement)
        {
            case (ModuleList<nn.Module<Tensor, Tensor>> list, nn.Module<Tensor, Tensor> r): list[index] = r; break;
            case (ModuleList<nn.Module> list, _): list[index] = replacement; break;
            case (ModuleDict<nn.Module<Tensor, Tensor>> dict, nn.Module<Tensor, Tensor> r): dict[name] = r; break;
            case (ModuleDict<nn.Module> dict, _): dict[name] = replacement; break;
            default:
                throw new AdapterInjectionException(
                    $"Module '{path}' is held in a {Describe(parent)}, which cannot hold an adapter layer. " +
                    $"Declare it as ModuleList<Module<Tensor, Tensor>> / ModuleDict<Module<Tensor, Tensor>> instead.");
        }
    }

    private static void ReplaceInFields(nn.Module parent, string path, nn.Module current, nn.Module replacement)
    {
        var holders = InstanceFields(parent.GetType()).Where(f => ReferenceEquals(f.GetValue(parent), current)).ToList();
        if (holders.Count == 0)
            throw new AdapterInjectionException(
                $"Module '{path}' is registered in {Describe(parent)} but no field of that class holds it, so its " +
                "forward() could not be redirected to an adapter. Keep each layer in a field declared as " +
                "Module<Tensor, Tensor> (and call RegisterComponents()), or use the adapter layers directly.");
        foreach (var field in holders)
        {
            if (!field.FieldType.IsInstanceOfType(replacement))
                throw new AdapterInjectionException(
                    $"Module '{path}' is held in field '{field.Name}' of {Describe(parent)}, declared as {field.FieldType.Name}, " +
                    $"which cannot hold an adapter ({replacement.GetType().Name}: TorchSharp's {current.GetType().Name} is sealed). " +
                    $"Declare the field as Module<Tensor, Tensor> instead of {field.FieldType.Name}.");
        }
        // Reflection may write readonly instance fields; the TorchSharp idiom declares layers readonly.
        foreach (var field in holders) field.SetValue(parent, replacement);
    }

    // The fields of the user's module class: the same reflection TorchSharp's RegisterComponents does to find a module's
    // children, so any model that works with TorchSharp in a trimmed or AOT app keeps them (its forward reads them).
    // Where a field cannot be found, Replace throws AdapterInjectionException naming the module, never corrupts it.
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "The module's own fields, as TorchSharp's RegisterComponents reflects over them.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "The module's own fields, as TorchSharp's RegisterComponents reflects over them.")]
    private static IEnumerable<FieldInfo> InstanceFields(Type type)
    {
        const BindingFlags Flags = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        for (var t = type; t is not null && t != typeof(nn.Module); t = t.BaseType)
        {
            if (t.Assembly == typeof(nn.Module).Assembly) continue; // TorchSharp's own bookkeeping
            foreach (var f in t.GetFields(Flags)) yield return f;
        }
    }

    private static bool IsGeneric(Type type, Type definition)
    {
        for (var t = type; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == definition) return true;
        return false;
    }

    private static string Describe(nn.Module m) => $"'{m.GetName()}' ({m.GetType().Name})";
}

/// <summary>An adapter cannot be attached to a module of the model; the message says which and how to fix it.</summary>
public sealed class AdapterInjectionException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public AdapterInjectionException(string message) : base(message) { }
}
