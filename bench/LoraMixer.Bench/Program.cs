using LoraMixer.Bench;

return args.FirstOrDefault() switch
{
    "forward" => ForwardBenchmark.Run(args[1..]),
    "mixer" => MixerBenchmark.Run(args[1..]),
    "train-step" => TrainStepBenchmark.Run(args[1..]),
    "mamba-scan" => MambaScanBenchmark.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: LoraMixer.Bench forward --model DIR [--threads N] [--repeats N]");
    Console.Error.WriteLine("       LoraMixer.Bench mixer --model DIR [--experts 6] [--top-k 2] [--rank 8] [--threads N] [--repeats N]");
    return 2;
}
