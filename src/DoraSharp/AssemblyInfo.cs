namespace DoraSharp;
