using DoraSharp.Cli;
using DoraSharp.Cli.Commands;

// `dora`: the command-line face of DoraSharp. Each command lives in Commands/ and only parses options and
// renders; the work is done by the library.
return Cli.Run(CommandCatalog.CreateRoot(), args);
