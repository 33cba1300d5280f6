using System.CommandLine;
using DoraSharp.Cli;
using DoraSharp.Cli.Commands;

// `dora`: the command-line face of DoraSharp. Each command lives in Commands/ and only parses options and
// renders; the work is done by the library.
var root = new RootCommand("DoraSharp: LoRA and DoRA fine-tuning for .NET on TorchSharp, numerically identical to Hugging Face PEFT.");
foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
return Cli.Run(root, args);
