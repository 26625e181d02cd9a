using LoraMixer.Models.Llama;
using LoraMixer.Lora;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

public sealed class TrainingAttentionTests
{
    [Fact]
    public void Training_attention_path_equals_the_inference_path()
    {
        // With a trainable adapter the attention runs the explicit softmax path (fast CPU backward);
        // without gradients it runs SDPA. Both must give the same logits, padded batches included.
        using var model = LlamaLoader.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama"));
        var config = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = TargetLinears.AttentionProjections };
        var modules = AdapterInjector.Inject(model, config);
        var g = new Generator(3);
        foreach (var m in modules.Values) m.SetWeights(randn(m.lora_A.shape, generator: g) * 0.1, randn(m.lora_B.shape, generator: g) * 0.1);
        var ids = tensor(new long[] { 1, 5, 9, 14, 2, 7, 0, 0, 1, 3, 4, 8, 16, 3, 11, 12 }, new long[] { 2, 8 });
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 8 });
        Tensor inference;
        using (no_grad()) inference = model.Forward(ids, mask);
        var training = model.Forward(ids, mask);
        Assert.True(training.requires_grad, "the LoRA weights must put the forward on the training path");
        var real = mask.unsqueeze(-1).to(ScalarType.Bool);
        Assert.True(training.detach().masked_select(real).allclose(inference.masked_select(real), rtol: 1e-4, atol: 1e-5));
        using (no_grad())
        {
            var causal = model.Forward(ids);
            Assert.True(model.Forward(ids).allclose(causal));
        }
        var unmaskedTraining = model.Forward(ids);
        using (no_grad()) Assert.True(unmaskedTraining.detach().allclose(model.Forward(ids), rtol: 1e-4, atol: 1e-5));
    }
}
