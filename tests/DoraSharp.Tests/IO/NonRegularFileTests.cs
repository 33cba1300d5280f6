using System.Diagnostics;
using DoraSharp.Examples.Data;
using DoraSharp.IO;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Every file the library reads must be a regular file (or a symbolic link to one): a FIFO made with
/// <c>mkfifo</c>, a directory or a character device in its place is refused by name before it is opened. Before
/// this check, opening a FIFO for reading blocked forever (issue 13, defect 8).
/// </summary>
/// <remarks>
/// Each load runs on a task with a 30-second hang guard: that is a guard against blocking forever, not a speed
/// target (the refusal takes milliseconds). If a load does hang, the guard opens the FIFO for writing once, which
/// releases the blocked reader, so a failing test does not leave a thread stuck behind.
/// </remarks>
public sealed class NonRegularFileTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static void MakeFifo(string path)
    {
        var start = new ProcessStartInfo("mkfifo") { ArgumentList = { path }, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"mkfifo {path} failed: {error}");
    }

    /// <summary>Runs <paramref name="action"/> expecting <typeparamref name="T"/>; fails (and unblocks <paramref name="fifo"/>) if it hangs.</summary>
    private static T RefusedWithoutHanging<T>(Action action, string? fifo) where T : Exception
    {
        var task = Task.Run(action);
        // Waiting on a continuation: Task.Wait would rethrow the task's exception here.
        if (!task.ContinueWith(_ => { }, TaskScheduler.Default).Wait(HangGuard))
        {
            // Release the reader blocked in open(): a writer appears, closes, and the reader sees end of file.
            if (fifo is not null) using (new FileStream(fifo, FileMode.Open, FileAccess.Write)) { }
            Assert.Fail($"the load was still blocked on {fifo} after {HangGuard}");
        }
        Assert.True(task.IsFaulted, "the load succeeded; expected a refusal");
        return Assert.IsType<T>(task.Exception!.InnerException);
    }

    private string Adapter() => AdapterFixture.CopyAdapter(_temp.File($"adapter-{Guid.NewGuid():N}"));

    [Theory]
    [InlineData("adapter_model.safetensors")]
    [InlineData("adapter_config.json")]
    public void A_FIFO_in_an_adapter_directory_is_refused_without_blocking(string name)
    {
        string dir = Adapter();
        string path = Path.Combine(dir, name);
        File.Delete(path);
        MakeFifo(path);
        var model = new Mlp();
        using var snapshot = ModelSnapshot.Take(model);
        var e = RefusedWithoutHanging<AdapterFormatException>(() => LoraModel.LoadAdapter(model, dir), path);
        Assert.Equal(path, e.FilePath);
        Assert.Contains("is a FIFO (named pipe), not a regular file", e.Message);
        snapshot.AssertUnchanged(model);
    }

    [Fact]
    public void LoadAdapterWeights_ReadConfig_and_the_base_weights_refuse_a_FIFO_too()
    {
        string dir = Adapter();
        var lora = LoraModel.Wrap(new Mlp(), new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        string tensors = Path.Combine(dir, AdapterFiles.TensorsFileName);
        File.Delete(tensors);
        MakeFifo(tensors);
        RefusedWithoutHanging<AdapterFormatException>(() => lora.LoadAdapterWeights(dir), tensors);

        string config = Path.Combine(dir, AdapterFiles.ConfigFileName);
        File.Delete(config);
        MakeFifo(config);
        var e = RefusedWithoutHanging<AdapterFormatException>(() => AdapterFiles.ReadConfig(dir), config);
        Assert.Contains("FIFO", e.Message);

        string weights = _temp.File("base.safetensors");
        MakeFifo(weights);
        e = RefusedWithoutHanging<AdapterFormatException>(() => BaseWeightsFile.Load(new Mlp(), weights), weights);
        Assert.Equal(weights, e.FilePath);
        Assert.Contains("FIFO", e.Message);
    }

    [Fact]
    public void A_checkpoint_file_that_is_a_FIFO_makes_the_checkpoint_unusable_without_blocking()
    {
        string checkpoint = _temp.File("checkpoint-0000000001");
        Directory.CreateDirectory(checkpoint);
        string sums = Path.Combine(checkpoint, CheckpointStore.ChecksumFile);
        MakeFifo(sums);
        var e = RefusedWithoutHanging<InvalidDataException>(() => CheckpointStore.Verify(checkpoint), sums);
        Assert.Contains("FIFO", e.Message);
    }

    [Fact]
    public void A_dataset_file_that_is_a_FIFO_is_refused_without_blocking()
    {
        string images = _temp.File("train-images-idx3-ubyte");
        MakeFifo(images);
        var e = RefusedWithoutHanging<DatasetFormatException>(() => IdxReader.ReadImages(images), images);
        Assert.Contains("is a FIFO (named pipe), not a regular file", e.Message);
    }

    [Fact]
    public void A_directory_or_a_device_in_place_of_a_file_is_refused_by_name()
    {
        string dir = Adapter();
        string tensors = Path.Combine(dir, AdapterFiles.TensorsFileName);
        File.Delete(tensors);
        Directory.CreateDirectory(tensors);
        var e = Assert.Throws<AdapterFormatException>(() => LoraModel.LoadAdapter(new Mlp(), dir));
        Assert.Equal(tensors, e.FilePath);
        Assert.Contains("is a directory, not a regular file", e.Message);

        // /dev/zero never ends; through a symbolic link it is refused like its target.
        Directory.Delete(tensors);
        File.CreateSymbolicLink(tensors, "/dev/zero");
        e = Assert.Throws<AdapterFormatException>(() => LoraModel.LoadAdapter(new Mlp(), dir));
        Assert.Contains("is a character device, not a regular file", e.Message);
    }

    [Fact]
    public void Symbolic_links_to_regular_files_load()
    {
        // Hugging Face caches and hand-made adapter folders link to the real files: links are followed.
        string dir = _temp.File("linked");
        Directory.CreateDirectory(dir);
        File.CreateSymbolicLink(Path.Combine(dir, AdapterFiles.ConfigFileName), AdapterFixture.ConfigPath);
        File.CreateSymbolicLink(Path.Combine(dir, AdapterFiles.TensorsFileName), AdapterFixture.TensorsPath);
        var lora = LoraModel.LoadAdapter(new Mlp(), dir);
        Assert.Equal(3, lora.Layers.Count);
    }
}
