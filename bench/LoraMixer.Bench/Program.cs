using LoraMixer.Bench;

return args.FirstOrDefault() switch
{
    "forward" => ForwardBenchmark.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: LoraMixer.Bench forward --model DIR [--threads N] [--repeats N]");
    return 2;
}
