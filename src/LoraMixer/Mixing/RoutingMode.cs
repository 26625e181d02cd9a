namespace LoraMixer.Mixing;

/// <summary>How a router's probabilities become expert weights (docs/method.md §4).</summary>
public enum RoutingMode
{
    /// <summary>Every sample uses exactly its task's expert (one-hot); stage-1 expert training.</summary>
    Hard,
    /// <summary>Dense softmax weights over all experts, fully differentiable; stage-2 router training.</summary>
    Soft,
    /// <summary>The k largest probabilities, renormalised; only those experts are computed (inference).</summary>
    TopK,
    /// <summary>Top-k weights forward, dense softmax gradient backward: <c>g = sg(topk(p)) + p − sg(p)</c>.</summary>
    StraightThrough,
}
