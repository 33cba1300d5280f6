using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using DoraSharp.IO;
using Xunit;
using TorchSharp;
using Xunit.Abstractions;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Thousands of mutated files from valid seeds: the reader returns tensors or throws
/// <see cref="AdapterFormatException"/>, nothing else, never hangs, and never loads more bytes than the file has.
/// </summary>
public sealed partial class SafetensorsFuzzTests(ITestOutputHelper output)
{
    private const int Mutants = 6000;
    private const int Seed = 20240611;
    private static readonly TimeSpan ReadLimit = TimeSpan.FromSeconds(10);

    private static readonly string[] NumberReplacements =
    [
        "0", "1", "2", "3", "4", "7", "8", "16", "-1", "-0", "1.5", "1e3", "4.0", "00", "255", "65536",
        "2147483648", "4294967296", "4611686018427387904", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999999", "1e999",
    ];

    private static readonly string[] DtypeReplacements =
        ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U64", "C64", "F8_E4M3", "f32", "", "F32 ", "\\u0046\\u0033\\u0032"];

    private static readonly string[] Fragments =
    [
        "{", "}", "[", "]", "\"", ":", ",", "null", "true", "[]", "{}", "\"\\ud800\"", "1e999", "-", "\\",
        "\"__metadata__\":{}", "\"dtype\":\"F32\"", "\"shape\":[]", "\"data_offsets\":[0,0]", "\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
        "\u00e9", "\u0000", " ", "\n",
    ];

    [Fact]
    public async Task Mutated_files_are_read_or_rejected_with_AdapterFormatException_only()
    {
        var random = new Random(Seed);
        using var directory = new TempDirectory();
        byte[][] seeds = [SeedFile(directory), File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "IO", "Fixtures", "linear_dora_f32_3x5_r1_bias.safetensors"))];
        string path = directory.File("mutant.safetensors");

        int accepted = 0, rejected = 0;
        TimeSpan slowest = TimeSpan.Zero;
        int slowestIndex = -1;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Mutants; i++)
        {
            byte[] mutant = seeds[random.Next(seeds.Length)];
            int edits = 1 + random.Next(3);
            for (int e = 0; e < edits; e++)
            {
                mutant = Mutate(mutant, random);
            }
            File.WriteAllBytes(path, mutant);

            var one = Stopwatch.StartNew();
            Exception? outcome = null;
            try
            {
                outcome = await Task.Run(() => ReadOnce(path, mutant.LongLength)).WaitAsync(ReadLimit);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"mutant #{i} ({mutant.Length} bytes) was still being read after {ReadLimit}; header: {HeaderExcerpt(mutant)}");
            }
            if (one.Elapsed > slowest)
            {
                slowest = one.Elapsed;
                slowestIndex = i;
            }
            switch (outcome)
            {
                case null: accepted++; break;
                case AdapterFormatException: rejected++; break;
                case var other:
                    Assert.Fail($"mutant #{i}: {other.GetType()} escaped the reader: {other.Message}\nheader: {HeaderExcerpt(mutant)}");
                    break;
            }
        }

        output.WriteLine($"safetensors fuzz: {Mutants} mutated files (seed {Seed}) in {clock.Elapsed.TotalSeconds:F1} s: {accepted} read, {rejected} rejected with AdapterFormatException; slowest read {slowest.TotalMilliseconds:F0} ms (mutant #{slowestIndex})");
        // Both outcomes must occur, or the mutations are not exercising the reader.
        Assert.InRange(accepted, 1, Mutants - 1);
    }

    private static Exception? ReadOnce(string path, long fileLength)
    {
        try
        {
            using SafetensorsContent content = SafetensorsFile.Read(path);
            long loaded = content.Tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize);
            if (loaded > fileLength)
            {
                return new InvalidOperationException($"loaded {loaded} tensor bytes from a {fileLength}-byte file");
            }
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    // A valid seed covering every supported dtype, a scalar, a zero-size tensor and metadata.
    private static byte[] SeedFile(TempDirectory directory)
    {
        var random = new Random(Seed);
        var specs = new (string Name, torch.ScalarType Dtype, long[] Shape)[]
        {
            ("w", torch.ScalarType.Float32, [2, 3]), ("d", torch.ScalarType.Float64, []), ("i", torch.ScalarType.Int64, [4]),
            ("m", torch.ScalarType.Bool, [5]), ("h", torch.ScalarType.Float16, [0, 3]), ("b", torch.ScalarType.BFloat16, [2]),
            ("u", torch.ScalarType.Byte, [3]), ("s", torch.ScalarType.Int8, [1]), ("k", torch.ScalarType.Int16, [2]), ("n", torch.ScalarType.Int32, [1, 1]),
        };
        var tensors = new List<KeyValuePair<string, torch.Tensor>>();
        try
        {
            foreach ((string name, torch.ScalarType dtype, long[] shape) in specs)
            {
                using torch.Tensor probe = torch.empty(shape, dtype);
                var bytes = new byte[probe.NumberOfElements * probe.ElementSize];
                random.NextBytes(bytes);
                if (dtype == torch.ScalarType.Bool) { for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1; }
                tensors.Add(new(name, TensorTestData.FromBytes(dtype, shape, bytes)));
            }
            string path = directory.File("seed.safetensors");
            SafetensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "fuzz seed" });
            return File.ReadAllBytes(path);
        }
        finally
        {
            tensors.ForEach(kv => kv.Value.Dispose());
        }
    }

    private static byte[] Mutate(byte[] file, Random random)
    {
        switch (random.Next(10))
        {
            case 0: // truncate
                return file[..random.Next(file.Length + 1)];
            case 1: // append junk
            {
                var junk = new byte[1 + random.Next(16)];
                random.NextBytes(junk);
                return [.. file, .. junk];
            }
            case 2: // flip bits anywhere
            {
                byte[] copy = (byte[])file.Clone();
                for (int n = 1 + random.Next(4); n > 0 && copy.Length > 0; n--)
                {
                    copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
                }
                return copy;
            }
            case 3: // overwrite the header length
            {
                byte[] copy = (byte[])file.Clone();
                if (copy.Length < 8) return copy;
                ulong current = BitConverter.ToUInt64(copy);
                ulong[] choices = [0, 1, 7, 8, current - 1, current + 1, current + 8, (ulong)copy.Length, 100_000_000, 100_000_001, ulong.MaxValue, (ulong)random.NextInt64()];
                BitConverter.GetBytes(choices[random.Next(choices.Length)]).CopyTo(copy, 0);
                return copy;
            }
            default: // edit the header as text, then fix up (usually) the length prefix
            {
                if (!FuzzText.TrySplit(file, out string header, out byte[] buffer)) return file;
                string edited = random.Next(6) switch
                {
                    0 => FuzzText.ReplaceRandomMatch(header, NumberPattern(), NumberReplacements[random.Next(NumberReplacements.Length)], random),
                    1 => FuzzText.ReplaceRandomMatch(header, DtypePattern(), $"\"dtype\":\"{DtypeReplacements[random.Next(DtypeReplacements.Length)]}\"", random),
                    2 => DeleteSpan(header, random),
                    3 => DuplicateSpan(header, random),
                    4 => header.Insert(random.Next(header.Length + 1), Fragments[random.Next(Fragments.Length)]),
                    _ => RenameKey(header, random),
                };
                byte[] newHeader = Encoding.UTF8.GetBytes(edited);
                ulong? length = random.Next(8) == 0 ? (ulong)random.Next(newHeader.Length + 16) : null;
                return SafetensorsBytes.Build(newHeader, buffer, length);
            }
        }
    }

    private static string DeleteSpan(string text, Random random)
    {
        int start = random.Next(text.Length + 1);
        int length = random.Next(Math.Min(24, text.Length - start) + 1);
        return text.Remove(start, length);
    }

    private static string DuplicateSpan(string text, Random random)
    {
        int start = random.Next(text.Length + 1);
        int length = random.Next(Math.Min(80, text.Length - start) + 1);
        return text.Insert(start, text.Substring(start, length));
    }

    private static string RenameKey(string text, Random random)
    {
        // Give one key the name of another: duplicate tensors, a tensor called __metadata__, and so on.
        MatchCollection keys = KeyPattern().Matches(text);
        if (keys.Count < 2) return text;
        Match target = keys[random.Next(keys.Count)];
        string name = keys[random.Next(keys.Count)].Value;
        return string.Concat(text.AsSpan(0, target.Index), name, text.AsSpan(target.Index + target.Length));
    }

    private static string HeaderExcerpt(byte[] file)
    {
        if (file.Length < 8) return "(no header)";
        int length = (int)Math.Min(BitConverter.ToUInt64(file), (ulong)Math.Min(file.Length - 8, 400));
        return Encoding.UTF8.GetString(file, 8, length);
    }

    [GeneratedRegex(@"-?\d+")]
    private static partial Regex NumberPattern();

    [GeneratedRegex("\"dtype\":\"[^\"]*\"")]
    private static partial Regex DtypePattern();

    [GeneratedRegex("\"[^\"]*\"(?=:)")]
    private static partial Regex KeyPattern();
}
