using LoraMixer.Build;
using TorchSharp;

namespace LoraMixer.Tests.Build;

public sealed class ElfVersionPatcherTests
{
    private static string? PackagedLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        return File.Exists(path) ? path : null;
    }

    [Fact]
    public void Patching_a_copy_sets_only_the_weak_flag_of_GLIBCXX_3_4_32_and_is_idempotent()
    {
        string? original = PackagedLibrary();
        Assert.True(original is not null, "TorchSharp 0.107.0 native library not found in the NuGet cache");
        string copy = Path.Combine(TestPaths.NewTempDir(), "libLibTorchSharp.so");
        File.Copy(original!, copy);
        byte[] before = File.ReadAllBytes(copy);

        long[] offsets = ElfVersionPatcher.FindFlagOffsets(before, ElfVersionPatcher.MissingVersion, copy);
        Assert.Single(offsets);
        Assert.Equal(0, BitConverter.ToUInt16(before, (int)offsets[0]) & 2);

        Assert.Equal(ElfVersionPatcher.Outcome.Patched, ElfVersionPatcher.MakeVersionWeak(copy));
        byte[] after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.Equal(new[] { (int)offsets[0] }, changed);
        Assert.Equal(BitConverter.ToUInt16(before, (int)offsets[0]) | 2, BitConverter.ToUInt16(after, (int)offsets[0]));

        Assert.Equal(ElfVersionPatcher.Outcome.AlreadyWeak, ElfVersionPatcher.MakeVersionWeak(copy));
        Assert.Equal(after, File.ReadAllBytes(copy));
    }

    [Fact]
    public void A_version_the_library_does_not_require_is_left_alone()
    {
        string? original = PackagedLibrary();
        Assert.True(original is not null, "TorchSharp 0.107.0 native library not found in the NuGet cache");
        string copy = Path.Combine(TestPaths.NewTempDir(), "lib.so");
        File.Copy(original!, copy);
        Assert.Equal(ElfVersionPatcher.Outcome.NoSuchRequirement, ElfVersionPatcher.MakeVersionWeak(copy, "GLIBCXX_9.9.99"));
        Assert.Equal(File.ReadAllBytes(original!), File.ReadAllBytes(copy));
    }

    [Fact]
    public void Non_elf_input_is_rejected_with_InvalidDataException()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.FindFlagOffsets(new byte[100], "X", "junk"));
    }

    [Fact]
    public void The_built_library_loads_and_runs_a_tensor_op()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        var b = torch.matmul(a, a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, b.data<float>().ToArray());
    }
}
