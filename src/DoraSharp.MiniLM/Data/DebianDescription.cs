namespace DoraSharp.MiniLM;

/// <summary>Which side of the fixed train/test split an example is on.</summary>
public enum DatasetSplit
{
    /// <summary>For fitting.</summary>
    Train,

    /// <summary>Held out: its source packages never appear in <see cref="Train"/>.</summary>
    Test,
}

/// <summary>
/// One Debian package long description and the archive section of its package. Nothing names the package.
/// </summary>
/// <param name="Id">16 hex digits: the start of sha256("dorasharp-debian-descriptions-v1:pick:" + text).</param>
/// <param name="Split">Train or test.</param>
/// <param name="Label">The package's Section, e.g. <c>admin</c>.</param>
/// <param name="Text">The long description, paragraphs separated by newlines.</param>
public sealed record DebianDescription(string Id, DatasetSplit Split, string Label, string Text);
