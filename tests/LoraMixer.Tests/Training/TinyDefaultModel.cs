using LoraMixer.Demo;

namespace LoraMixer.Tests.Training;

/// <summary>A default-architecture model pretrained for two steps (about a second): real weights and tokenizer files.</summary>
internal static class TinyDefaultModel
{
    private static readonly Lazy<string> Dir = new(() =>
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "base");
        DefaultModel.Pretrain(dir, new PretrainSettings { Steps = 2, Documents = 100, BatchSize = 8 });
        return dir;
    });

    public static string Path_ => Dir.Value;
}
