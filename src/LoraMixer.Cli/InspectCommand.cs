using System.CommandLine;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>inspect DIR</c>: what a model folder holds, checked against its config.</summary>
internal static class InspectCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("model-dir") { Description = "Hugging Face model folder" };
        var command = new Command("inspect", "Show a model folder's architecture, sizes, weights and tokenizer") { dir };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string path = result.GetValue(dir)!;
            var table = new Table().AddColumn("field").AddColumn("value").HideHeaders();
            void Row(string k, object? v) => table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToString() ?? "-"));
            // The config first: an unsupported architecture is the more useful message than missing weights.
            bool stateSpace = MambaConfig.DescribesStateSpaceModel(path);
            var mambaConfig = stateSpace ? MambaConfig.Load(path) : null;
            var llamaConfig = stateSpace ? null : LlamaConfig.Load(path);
            using var checkpoint = SafeTensorsCheckpoint.Open(path);
            if (mambaConfig is { } mamba)
            {
                Models.Mamba.MambaLoader.CheckShapes(mamba, checkpoint, path);
                Row("architecture", mamba.Architecture);
                Row("model_type", mamba.ModelType);
                Row("parameters", mamba.ParameterCount().ToString("N0"));
                Row("vocab_size", mamba.VocabSize);
                Row("hidden_size / d_inner", $"{mamba.HiddenSize} / {mamba.IntermediateSize}");
                Row("num_hidden_layers", mamba.NumHiddenLayers);
                Row("state_size / conv_kernel / time_step_rank", $"{mamba.StateSize} / {mamba.ConvKernel} / {mamba.TimeStepRank}");
                Row("B/C/Δ RMS norm (Falcon-Mamba)", mamba.NormalizesBcDt);
                Row("tie_word_embeddings", mamba.TieWordEmbeddings);
            }
            else
            {
                var config = llamaConfig!;
                ModelLoader.CheckShapes(config, checkpoint, path);
                Row("architecture", config.Architecture);
                Row("model_type", config.ModelType);
                Row("parameters", config.ParameterCount().ToString("N0"));
                Row("vocab_size", config.VocabSize);
                Row("hidden_size", config.HiddenSize);
                Row("intermediate_size", config.IntermediateSize);
                Row("num_hidden_layers", config.NumHiddenLayers);
                Row("attention heads / kv heads / head_dim", $"{config.NumAttentionHeads} / {config.NumKeyValueHeads} / {config.HeadDim}");
                Row("max_position_embeddings", config.MaxPositionEmbeddings);
                Row("rope_theta", config.RopeTheta);
                Row("rope_scaling", config.RopeScaling is null ? "none" : $"{config.RopeScaling.Type} ×{config.RopeScaling.Factor}");
                Row("rms_norm_eps", config.RmsNormEps);
                Row("tie_word_embeddings", config.TieWordEmbeddings);
                Row("q/k/v bias", config.QkvBias);
            }
            Row("weight tensors", checkpoint.Names.Count);
            try
            {
                var tokenizer = TokenizerLoader.Load(path);
                Row("tokenizer", $"{tokenizer.GetType().Name}, {tokenizer.VocabSize} tokens, BOS {tokenizer.BosId?.ToString() ?? "none"}, EOS {tokenizer.EosId?.ToString() ?? "none"}");
            }
            catch (Errors.ModelFormatException e)
            {
                Row("tokenizer", "not usable: " + e.Message);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
