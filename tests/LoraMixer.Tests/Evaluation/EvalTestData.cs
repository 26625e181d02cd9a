using System.IO.Compression;
using System.Text;
using LoraMixer.Demo;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Evaluation;

/// <summary>Small benchmark files in the real formats, and the demo character tokenizer (vocabulary 100).</summary>
public static class EvalTestData
{
    /// <summary>Debian's interpreter when present (a pyenv shim on PATH costs about a second per start), else python3.</summary>
    public static string Python { get; } = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    public static string Write(string dir, string relative, string content)
    {
        string path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public static string WriteGz(string dir, string relative, string content)
    {
        string path = Path.Combine(dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(content));
        return path;
    }

    public static string ArcLine(string id, string stem, string[] labels, string[] texts, string key)
    {
        var choices = string.Join(",", labels.Select((l, i) => $"{{\"text\": \"{texts[i]}\", \"label\": \"{l}\"}}"));
        return $"{{\"id\": \"{id}\", \"question\": {{\"stem\": \"{stem}\", \"choices\": [{choices}]}}, \"answerKey\": \"{key}\"}}";
    }

    public static ITokenizer DemoCharTokenizer()
    {
        string dir = TestPaths.NewTempDir();
        DemoTokenizer.WriteFiles(dir);
        return TokenizerLoader.Load(dir);
    }
}
