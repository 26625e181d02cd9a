namespace LoraMixer.Mixing;

/// <summary>How often a block router decides (docs/method.md §3, <c>routing_granularity</c>).</summary>
public enum RoutingGranularity
{
    /// <summary>Every token is routed on its own (the paper's routing).</summary>
    Token,
    /// <summary>
    /// One decision per sequence, taken at the last prompt token and used for every token of the sequence,
    /// prompt included: a request is served by the experts its prompt calls for. In training the position is
    /// where the response starts; in generation it is the last token of the prefill, kept in the cache for
    /// the decoding steps.
    /// </summary>
    Sequence,
}
