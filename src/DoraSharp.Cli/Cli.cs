using System.CommandLine;
using Spectre.Console;

namespace DoraSharp.Cli;

/// <summary>
/// Runs a parsed command line with the project's error contract: a bad option or a user error prints one
/// line to stderr and exits with code 2 (no stack trace); a bug prints the exception and exits with 1.
/// </summary>
internal static class Cli
{
    public const int UsageError = 2;

    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"dora: {parse.Errors[0].Message} (see 'dora {string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')))} --help')");
            return UsageError;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"dora: {e.Message}");
            return UsageError;
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"dora: {e.Message}");
            return UsageError;
        }
    }

    /// <summary>Exceptions that describe bad input (files, options), not a bug: one line, exit 2.</summary>
    private static bool IsUserError(Exception e) => e is ArgumentException or IOException or UnauthorizedAccessException
        or InvalidOperationException { Source: "DoraSharp" };
}

/// <summary>A user error found after parsing (a folder that does not exist, an option combination): exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
