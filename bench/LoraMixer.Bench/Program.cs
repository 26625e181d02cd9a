using LoraMixer.Bench;

return args.FirstOrDefault() switch
{
    "forward" => ForwardBenchmark.Run(args[1..]),
    "mixer" => MixerBenchmark.Run(args[1..]),
    "train-step" => TrainStepBenchmark.Run(args[1..]),
    "mamba-scan" => MambaScanBenchmark.Run(args[1..]),
    "loglikelihood" => LoglikelihoodBenchmark.Run(args[1..]),
    "make-model" => MakeModel.Run(args[1..]),
    "serve" => ServeBenchmark.Run(args[1..]),
    "matvec" => MatVecBenchmark.Run(args[1..]),
    "quantize" => QuantizeBenchmark.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: LoraMixer.Bench forward --model DIR [--threads N] [--repeats N]");
    Console.Error.WriteLine("       LoraMixer.Bench make-model --shape smollm-135m|stories260k [--vocab N] --out DIR");
    Console.Error.WriteLine("       LoraMixer.Bench mixer --model DIR [--experts 6] [--top-k 2] [--rank 8] [--threads N] [--repeats N]");
    Console.Error.WriteLine("       LoraMixer.Bench train-step [--hidden 128] [--layers 4] | mamba-scan [--model DIR] [--tokens 512] [--llama false]");
    Console.Error.WriteLine("       LoraMixer.Bench loglikelihood --model DIR [--questions 32] [--context-words 60] [--batch-size 8]");
    Console.Error.WriteLine("       LoraMixer.Bench matvec [--in 576] [--out 1536] [--batches 1,2,4,8,16,32]");
    Console.Error.WriteLine("       LoraMixer.Bench quantize --model DIR [--text FILE|demo] [--tokens 4096] [--rounds 3] [--steps 128]");
    Console.Error.WriteLine("       LoraMixer.Bench serve --model DIR [--clients 1,8,32] [--seconds 30] [--max-tokens 64] [--max-batch N] [--adapter DIR] [--transport http|engine]");
    return 2;
}
