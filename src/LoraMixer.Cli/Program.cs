using System.CommandLine;
using LoraMixer.Cli;

var root = new RootCommand("LoraMixer: run, adapt and mix LoRA experts on small language models (LoRA-Mixer, arXiv 2507.00029)");
root.Add(CommonOptions.Verbose);
root.Add(InspectCommand.Create());
root.Add(GenerateCommand.Create());
root.Add(TokenizeCommand.Create());
root.Add(LogitsCommand.Create());
root.Add(ConvertCommand.Create());
root.Add(DemoCommand.Create());
root.Add(PretrainCommand.Create());
root.Add(EvalCommand.Create());
root.Add(DataPrepareCommand.Create());
root.Add(LoraTrainCommand.Create());
root.Add(ReportCommand.Create());
root.Add(ExperimentCommand.Create());
root.Add(ServeCommand.Create());
root.Add(new Command("mixer", "Train and inspect LoRA-Mixers") { MixerTrainCommand.Create(), MixerInspectCommand.Create(), MixerDiagnoseCommand.Create() });

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // One line per problem and a pointer to help, instead of the full help text.
    foreach (var error in parsed.Errors)
        Console.Error.WriteLine("error: " + string.Join(' ', error.Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
    var path = new List<string>();
    for (var r = parsed.CommandResult; r is not null && r.Command != root; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        path.Insert(0, r.Command.Name);
    string command = string.Join(' ', path);
    Console.Error.WriteLine($"run 'loramixer {command}{(command.Length > 0 ? " " : "")}--help' for usage");
    return 2;
}
return parsed.Invoke();
