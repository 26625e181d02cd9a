using System.CommandLine;
using System.Globalization;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>mixer inspect DIR</c>: a mixer's config and experts; with <c>--data</c>, how it routes that data.</summary>
internal static class MixerInspectCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("mixer-dir") { Description = "LoRA-Mixer folder (mixer_config.json, router.safetensors, experts/)" };
        var model = new Option<string?>("--model", "-m") { Description = "Base model folder (default: the config's base_model, relative to the mixer folder)" };
        var data = new Option<string?>("--data") { Description = "JSONL data to route: prints per-layer expert load, entropy and the task × expert matrix" };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 8 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence in tokens", DefaultValueFactory = _ => 512 };
        var device = CommonOptions.Device();
        var command = new Command("inspect", "Show a LoRA-Mixer's config and experts; with --data, its routing statistics")
        {
            dir, model, data, batchSize, maxLength, device,
        };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string mixerDir = result.GetValue(dir)!;
            var config = MixerConfig.Load(mixerDir);
            var table = new Table().AddColumn("field").AddColumn("value").HideHeaders();
            void Row(string k, object? v) => table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToString() ?? "-"));
            Row("base_model", config.BaseModel);
            Row("architecture", $"{config.Architecture} (hidden {config.HiddenSize?.ToString() ?? "not recorded"}, {config.NumHiddenLayers?.ToString() ?? "not recorded"} layers)");
            Row("targets", string.Join(", ", config.Targets));
            Row("router_scope", config.RouterScope == RouterScope.Block ? "block" : "projection");
            Row("router_input", RouterPreset.Spell(config.RouterInput));
            Row("router_input_norm", RouterPreset.Spell(config.RouterInputNorm));
            Row("routing_granularity", RouterPreset.Spell(config.RoutingGranularity));
            Row("top_k", config.TopK);
            Row("renormalize", config.Renormalize);
            Row("router_temperature", config.RouterTemperature.ToString(CultureInfo.InvariantCulture));
            if (config.Training["paradigm"] is { } paradigm) Row("paradigm", paradigm.ToString());
            AnsiConsole.Write(table);

            var experts = new Table().AddColumn("expert").AddColumn("path").AddColumn(new TableColumn("r").RightAligned())
                .AddColumn(new TableColumn("lora_alpha").RightAligned()).AddColumn("target_modules").AddColumn(new TableColumn("modules").RightAligned());
            foreach (var expert in config.Experts)
            {
                using var adapter = PeftAdapter.Load(Path.Combine(mixerDir, expert.Path), expert.Name);
                var c = adapter.Config;
                experts.AddRow(Markup.Escape(expert.Name), Markup.Escape(expert.Path), c.R.ToString(CultureInfo.InvariantCulture),
                    c.LoraAlpha.ToString(CultureInfo.InvariantCulture) + (c.UseRslora ? " (rsLoRA)" : ""),
                    Markup.Escape(c.TargetModulesRegex ?? string.Join(", ", c.TargetModules)), adapter.Modules.Count.ToString(CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(experts);

            if (result.GetValue(data) is not string dataPath) return 0;
            string modelDir = result.GetValue(model) ?? DefaultBase(config, mixerDir);
            var records = JsonlDataset.Load(dataPath);
            var tasks = TrainingInputs.TasksOf(records);
            var settings = new FineTuneSettings { MaxLength = result.GetValue(maxLength), BatchSize = result.GetValue(batchSize), EvalFraction = 0 };
            settings.Validate();
            var tokenizer = TokenizerLoader.Load(modelDir);
            var encoded = EncodedData.Create(tokenizer, records, settings, tasks.Count > 0 ? tasks : null);
            using var lm = ModelLoader.LoadCausalLM(modelDir, CommonOptions.ResolveDevice(result, device));
            using var mixer = MixerCheckpoint.Load(lm, mixerDir);
            var statistics = MixerTrainingJob.CollectStatistics(mixer, encoded.Train, tasks, settings.BatchSize);
            Console.WriteLine($"routing of {encoded.Train.Count} examples from {dataPath}" + (encoded.Skipped > 0 ? $" ({encoded.Skipped} skipped: no target left at --max-length)" : ""));
            RoutingReport.Write(statistics, taskMatrix: true);
            return 0;
        }));
        return command;
    }

    internal static string DefaultBase(MixerConfig config, string mixerDir)
    {
        string candidate = config.BaseModel.Length > 0 ? Path.GetFullPath(Path.Combine(mixerDir, config.BaseModel)) : "";
        if (candidate.Length > 0 && Directory.Exists(candidate)) return candidate;
        throw new ArgumentException($"--data needs the base model: the mixer's base_model '{config.BaseModel}' is not a folder here; pass --model");
    }
}
