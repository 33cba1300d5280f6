using DoraSharp.Cli;
using DoraSharp.Cli.Commands;

// First, before libtorch is loaded: on a non-Intel CPU, re-execute with the MKL vendor fix preloaded (issue 15).
if (BlasStartup.Apply(args) is { } exitCode) return exitCode;

// The library prints nothing; when its conv2d guard switches oneDNN off on a faulty CPU, say so (docs/known-issues.md).
DoraSharp.ConvBackwardGuard.MkldnnDisabled += report => Console.Error.WriteLine(
    "DoraSharp: libtorch's oneDNN float32 conv2d backward gives wrong input gradients on this CPU; " +
    $"oneDNN kernels were switched off (see docs/known-issues.md). Now: {report}");

// `dora`: the command-line face of DoraSharp. Each command lives in Commands/ and only parses options and
// renders; the work is done by the library.
return Cli.Run(CommandCatalog.CreateRoot(), args);
