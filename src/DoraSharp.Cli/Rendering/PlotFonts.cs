using ScottPlot;

namespace DoraSharp.Cli.Rendering;

/// <summary>
/// Picks the font the plots use. ScottPlot draws with SkiaSharp's "NoDependencies" Linux build, which does not
/// ask fontconfig: it finds fonts only by scanning the usual folders. DejaVu Sans (Debian's fonts-dejavu-core,
/// installed with fontconfig on most systems) is preferred; otherwise any TrueType file in those folders is loaded
/// by path. With no font at all the plots still render, without text, and the caller is told how to fix it.
/// </summary>
internal static class PlotFonts
{
    private const string Preferred = "DejaVu Sans";
    private const string Loaded = "DoraSharp plot font";
    private static readonly object Gate = new();
    private static string? _warning;
    private static bool _configured;

    /// <summary>Chooses the font once per process; returns a one-line warning when no font was found, else null.</summary>
    public static string? Configure()
    {
        lock (Gate)
        {
            if (_configured) return _warning;
            _configured = true;
            if (Fonts.GetTypeface(Preferred, false, false) is { } typeface && typeface.FamilyName == Preferred)
            {
                Fonts.Default = Preferred;
                return null;
            }
            var file = Candidates().FirstOrDefault();
            if (file is not null)
            {
                Fonts.AddFontFile(Loaded, file);
                Fonts.Default = Loaded;
                return null;
            }
            _warning = "no font was found, so the plots have no text; install one (Debian/Ubuntu: apt-get install fonts-dejavu-core).";
            return _warning;
        }
    }

    private static IEnumerable<string> Candidates()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string[] roots = ["/usr/share/fonts", "/usr/local/share/fonts", Path.Combine(home, ".fonts"), Path.Combine(home, ".local/share/fonts")];
        foreach (var root in roots.Where(Directory.Exists))
        {
            IEnumerable<string> files;
            try { files = Directory.EnumerateFiles(root, "*.ttf", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            // A sans-serif regular face reads best in small labels; take one if there is one.
            foreach (var f in files.OrderBy(f => Path.GetFileName(f).Contains("Sans", StringComparison.OrdinalIgnoreCase) ? 0 : 1)
                         .ThenBy(f => Path.GetFileName(f).Contains("Bold", StringComparison.OrdinalIgnoreCase) || Path.GetFileName(f).Contains("Italic", StringComparison.OrdinalIgnoreCase) ? 1 : 0))
                yield return f;
        }
    }
}
