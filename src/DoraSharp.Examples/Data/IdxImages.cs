namespace DoraSharp.Examples.Data;

/// <summary>The contents of an IDX image file: <see cref="Count"/> images of <see cref="Rows"/> × <see cref="Columns"/> bytes, row-major, one after another.</summary>
/// <param name="Count">Number of images.</param>
/// <param name="Rows">Height of every image in pixels.</param>
/// <param name="Columns">Width of every image in pixels.</param>
/// <param name="Pixels">Count × Rows × Columns bytes, exactly as stored in the file.</param>
internal sealed record IdxImages(int Count, int Rows, int Columns, byte[] Pixels);
