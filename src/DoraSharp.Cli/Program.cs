using DoraSharp.Cli;
using DoraSharp.Cli.Commands;

// First, before libtorch is loaded: on a non-Intel CPU, re-execute with the MKL vendor fix preloaded (issue 15).
if (BlasStartup.Apply(args) is { } exitCode) return exitCode;

// `dora`: the command-line face of DoraSharp. Each command lives in Commands/ and only parses options and
// renders; the work is done by the library.
return Cli.Run(CommandCatalog.CreateRoot(), args);
