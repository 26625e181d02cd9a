namespace LoraMixer.Mixing;

/// <summary>Where routers sit (docs/method.md §3).</summary>
public enum RouterScope
{
    /// <summary>One router per block, read from the block's normalised input and reused for q, k, v and o (serial attention routing).</summary>
    Block,
    /// <summary>One router per target projection, read from that projection's own input (ablation).</summary>
    Projection,
}
