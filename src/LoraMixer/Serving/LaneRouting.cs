namespace LoraMixer.Serving;

/// <summary>
/// How the rows of one batch are routed: not at all (a plain model), each row forced to its own expert (adapters,
/// forced mixer experts; one-hot like stage-1 routing), or the mixer's top-k over the allowed experts. Requests with
/// the same routing share a batch.
/// </summary>
internal sealed record LaneRouting(LaneRoutingMode Mode, int TopK = 0, IReadOnlyList<bool>? Allowed = null)
{
    public static LaneRouting None { get; } = new(LaneRoutingMode.None);
    public static LaneRouting PerRow { get; } = new(LaneRoutingMode.PerRowExpert);

    /// <summary>A key that is equal for equal routings.</summary>
    public string Key => Mode switch
    {
        LaneRoutingMode.None => "none",
        LaneRoutingMode.PerRowExpert => "row",
        _ => $"top{TopK}:" + (Allowed is null ? "all" : string.Concat(Allowed.Select(a => a ? '1' : '0'))),
    };
}

/// <summary>The routing modes of <see cref="LaneRouting"/>.</summary>
internal enum LaneRoutingMode
{
    None,
    PerRowExpert,
    TopK,
}
