using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// Multinomial logistic regression on standardised features, fitted by full-batch Adam with a small L2
/// penalty: how well a linear map can name the task from what a router reads (the ceiling of a linear
/// router there).
/// </summary>
public static class LinearProbe
{
    /// <summary>
    /// Fits on (<paramref name="trainX"/> [N, F], <paramref name="trainY"/> [N] class ids) and returns the
    /// accuracy on (<paramref name="testX"/>, <paramref name="testY"/>); NaN when either side is empty.
    /// </summary>
    public static double Accuracy(Tensor trainX, Tensor trainY, Tensor testX, Tensor testY, int classes,
        int steps = 300, double learningRate = 0.05, double l2 = 1e-3)
    {
        if (trainX.shape[0] == 0 || testX.shape[0] == 0) return double.NaN;
        if (classes < 2) return 1.0;
        using var scope = NewDisposeScope();
        var x = trainX.to(ScalarType.Float32);
        var mean = x.mean(new long[] { 0 }, keepdim: true);
        var std = x.std(0, keepdim: true, unbiased: false).clamp_min(1e-6);
        x = (x - mean) / std;
        var y = trainY.to(ScalarType.Int64);
        var w = new TorchSharp.Modules.Parameter(zeros(x.shape[1], classes));
        var b = new TorchSharp.Modules.Parameter(zeros(classes));
        var optimizer = optim.Adam(new[] { w, b }, lr: learningRate);
        for (int step = 0; step < steps; step++)
        {
            using var inner = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(x.matmul(w) + b, y) + l2 * w.pow(2).sum();
            loss.backward();
            optimizer.step();
        }
        using var noGrad = no_grad();
        var predicted = (((testX.to(ScalarType.Float32) - mean) / std).matmul(w) + b).argmax(-1);
        return predicted.eq(testY.to(ScalarType.Int64)).to(ScalarType.Float32).mean().item<float>();
    }
}
