using System.CommandLine;
using DoraSharp.Training;

namespace DoraSharp.Cli;

/// <summary>
/// Runs a parsed command line with the project's error contract: a bad option or a user error prints one
/// line to stderr and exits with code 2 (no stack trace); a bug prints the exception and exits with 1. A training
/// command stopped by Ctrl+C or SIGTERM says so itself and exits with 130 or 143 (see <see cref="StopSignals"/>).
/// </summary>
internal static class Cli
{
    public const int UsageError = 2;

    /// <param name="root">The command tree.</param>
    /// <param name="args">The arguments after the program name.</param>
    /// <param name="error">Where error lines go; standard error when null (tests pass their own writer).</param>
    /// <param name="output">Where help and version text go; standard output when null. (Progress and tables are drawn by Spectre.Console on the terminal.)</param>
    public static int Run(RootCommand root, string[] args, TextWriter? error = null, TextWriter? output = null)
    {
        error ??= Console.Error;
        output ??= Console.Out;
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            error.WriteLine($"dora: {OneLine(parse.Errors[0].Message)} (see 'dora {string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')))} --help')");
            return UsageError;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = output, Error = error });
        }
        catch (UsageException e)
        {
            error.WriteLine($"dora: {OneLine(e.Message)}");
            return UsageError;
        }
        catch (ArgumentException e) when (e.ParamName is not null)
        {
            // ArgumentException appends " (Parameter 'name')" to the message: noise for a command-line user.
            error.WriteLine($"dora: {OneLine(e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal))}");
            return UsageError;
        }
        catch (Exception e) when (IsUserError(e))
        {
            error.WriteLine($"dora: {OneLine(e.Message)}");
            return UsageError;
        }
        catch (Exception e) when (NativeRuntime.IsLoadFailure(e))
        {
            // Not a bug: the machine cannot load libtorch. Say why and what to do (an installed tool has no scripts).
            error.WriteLine(NativeRuntime.Explain(e));
            return UsageError;
        }
    }

    /// <summary>
    /// Exceptions that describe bad input (files, options) or settings that made training diverge, not a bug:
    /// one line, exit 2.
    /// </summary>
    private static bool IsUserError(Exception e) => e is ArgumentException or IOException or UnauthorizedAccessException
        or TrainingDivergedException or CheckpointMismatchException or InvalidOperationException { Source: "DoraSharp" };

    /// <summary>Line breaks and tab runs (System.CommandLine lists choices with tabs) become single spaces.</summary>
    private static string OneLine(string message) => System.Text.RegularExpressions.Regex.Replace(message, @"\s+", " ").Trim();
}

/// <summary>A user error found after parsing (a folder that does not exist, an option combination): exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
