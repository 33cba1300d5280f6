namespace DoraSharp.Examples.Data;

/// <summary>
/// Finds the files of a named data set (<c>mnist</c> or <c>fashion-mnist</c>) and loads a split.
/// </summary>
/// <remarks>
/// A data folder holds the four files under their standard MNIST names, each raw or gzipped:
/// <c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>,
/// <c>t10k-labels-idx1-ubyte</c> (with or without <c>.gz</c>; the raw file wins when both exist,
/// since it needs no decompression). Without an explicit folder the first existing candidate is used:
/// <list type="bullet">
/// <item><c>mnist</c>: <c>$DORASHARP_DATA/mnist</c>, then <c>data/mnist</c> in the application's
/// folder or the nearest ancestor that has one (this finds the repository's bundled 10,000 digits
/// from any build output inside the repository, and from a published application that ships
/// <c>data/mnist</c> beside itself).</item>
/// <item><c>fashion-mnist</c>: <c>$DORASHARP_DATA/fashion-mnist</c>, then
/// <c>/usr/share/datasets/fashion-mnist</c> (Debian's package <c>dataset-fashion-mnist</c>).</item>
/// </list>
/// </remarks>
public static class DatasetCatalog
{
    /// <summary>The environment variable naming a data root folder that holds <c>mnist/</c> and/or <c>fashion-mnist/</c>.</summary>
    public const string DataRootVariable = "DORASHARP_DATA";

    /// <summary>Where Debian's package <c>dataset-fashion-mnist</c> puts its files.</summary>
    public const string DebianFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The data set names that <see cref="Load"/> accepts (compared ignoring case).</summary>
    public static IReadOnlyList<string> Names { get; } = [Mnist, FashionMnist];

    private const string Mnist = "mnist";
    private const string FashionMnist = "fashion-mnist";

    /// <summary>
    /// Loads the train or test split of a named data set.
    /// </summary>
    /// <param name="dataset"><c>mnist</c> or <c>fashion-mnist</c>.</param>
    /// <param name="dataDir">A folder with the four standard files; null to use the default places (see the remarks of <see cref="DatasetCatalog"/>).</param>
    /// <param name="train">True for the train files (<c>train-*</c>), false for the test files (<c>t10k-*</c>).</param>
    /// <exception cref="ArgumentException">The data set name is not one of <see cref="Names"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist, or no default place has the data set; the message lists where we looked.</exception>
    /// <exception cref="FileNotFoundException">The folder lacks a file; the message names the folder and the file names tried.</exception>
    /// <exception cref="DatasetFormatException">A file is not valid (see <see cref="ImageDataset.Load(string, string)"/>).</exception>
    public static DatasetSplit Load(string dataset, string? dataDir, bool train)
    {
        var (name, directory, origin) = Resolve(dataset, dataDir, Environment.GetEnvironmentVariable(DataRootVariable), AppContext.BaseDirectory);
        var (images, labels) = FindFiles(directory, train);
        return ImageDataset.Load(images, labels, $"{name} {(train ? "train" : "test")} split from {directory} ({origin})");
    }

    /// <summary>Returns the canonical name, the folder to read and a few words on how it was chosen.</summary>
    /// <param name="dataset">As for <see cref="Load"/>.</param>
    /// <param name="dataDir">As for <see cref="Load"/>.</param>
    /// <param name="dataRoot">The value of <see cref="DataRootVariable"/>, passed in so tests need not change the process environment.</param>
    /// <param name="baseDirectory">The folder to start the search for bundled data from (the application's folder).</param>
    internal static (string Name, string Directory, string Origin) Resolve(string dataset, string? dataDir, string? dataRoot, string baseDirectory)
    {
        var name = Names.FirstOrDefault(n => string.Equals(n, dataset?.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown data set '{dataset}'; expected one of: {string.Join(", ", Names)}.", nameof(dataset));

        if (!string.IsNullOrEmpty(dataDir))
        {
            var full = Path.GetFullPath(dataDir);
            if (!Directory.Exists(full))
            {
                throw new DirectoryNotFoundException($"Data folder '{full}' for data set '{name}' does not exist; expected a folder with {StandardNames}.");
            }
            return (name, full, "given folder");
        }

        var candidates = new List<(string Directory, string Origin)>();
        if (!string.IsNullOrEmpty(dataRoot))
        {
            candidates.Add((Path.GetFullPath(Path.Combine(dataRoot, name)), $"${DataRootVariable}"));
        }
        if (name == Mnist)
        {
            for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
            {
                candidates.Add((Path.Combine(dir.FullName, "data", Mnist), "bundled with DoraSharp"));
            }
        }
        else
        {
            candidates.Add((DebianFashionMnistDirectory, "Debian package dataset-fashion-mnist"));
        }

        foreach (var candidate in candidates)
        {
            if (Directory.Exists(candidate.Directory))
            {
                return (name, candidate.Directory, candidate.Origin);
            }
        }
        var hint = name == Mnist
            ? $"set {DataRootVariable} to the repository's data folder"
            : "install it with 'apt-get install dataset-fashion-mnist' (Debian, Ubuntu), or set " + DataRootVariable;
        throw new DirectoryNotFoundException(
            $"No folder for data set '{name}' was found; looked in: {string.Join(", ", candidates.Select(c => c.Directory))}"
            + $"{(string.IsNullOrEmpty(dataRoot) ? $" ({DataRootVariable} is not set)" : "")}. "
            + $"Pass a data folder with {StandardNames}, or {hint}.");
    }

    /// <summary>Returns the image and label files of one split in a data folder, preferring raw files to gzipped ones.</summary>
    internal static (string Images, string Labels) FindFiles(string directory, bool train)
    {
        var prefix = train ? "train" : "t10k";
        return (Find(directory, $"{prefix}-images-idx3-ubyte"), Find(directory, $"{prefix}-labels-idx1-ubyte"));
    }

    private static string Find(string directory, string stem)
    {
        foreach (var name in new[] { stem, stem + ".gz" })
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path))
            {
                return path;
            }
        }
        throw new FileNotFoundException($"Data folder '{directory}' has no {stem} file; looked for {stem} and {stem}.gz.", Path.Combine(directory, stem + ".gz"));
    }

    private static string StandardNames =>
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz)";
}
