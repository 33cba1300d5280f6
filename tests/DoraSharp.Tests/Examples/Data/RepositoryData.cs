namespace DoraSharp.Tests.Examples.Data;

/// <summary>
/// The repository's data folder, found from the test's build output by looking for the
/// solution file, so that the tests do not locate it with the catalog code they test.
/// </summary>
internal static class RepositoryData
{
    public static string MnistFolder { get; } = Path.Combine(FindRoot(), "data", "mnist");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DoraSharp.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No ancestor of {AppContext.BaseDirectory} holds DoraSharp.slnx; expected the tests to run from a build inside the repository.");
    }
}
