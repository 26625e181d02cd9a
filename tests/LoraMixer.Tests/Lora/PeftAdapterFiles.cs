using LoraMixer.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Lora;

/// <summary>Writes small PEFT adapter folders by hand (config text + named tensors) for the tests.</summary>
internal static class PeftAdapterFiles
{
    public const string Q0 = "model.layers.0.self_attn.q_proj", K0 = "model.layers.0.self_attn.k_proj", Q1 = "model.layers.1.self_attn.q_proj";

    public static string Config(int r = 2, string targets = "[\"q_proj\", \"k_proj\"]", string extra = "") =>
        $"{{\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\", \"r\": {r}, \"lora_alpha\": 4, \"target_modules\": {targets}{extra}}}";

    public static string Write(string config, params (string Key, long[] Shape)[] tensors)
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config);
        using var scope = torch.NewDisposeScope();
        SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"),
            tensors.Select(t => new KeyValuePair<string, Tensor>(t.Key, torch.randn(t.Shape))));
        return dir;
    }

    /// <summary>Same shape and the same float32 bits.</summary>
    public static void AssertBitEqual(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.Equal(Bits(expected), Bits(actual));
    }

    private static int[] Bits(Tensor t) => t.contiguous().data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    public static string A(string module) => $"base_model.model.{module}.lora_A.weight";

    public static string B(string module) => $"base_model.model.{module}.lora_B.weight";
}
