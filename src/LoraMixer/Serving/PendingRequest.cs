using System.Diagnostics;
using System.Threading.Channels;

namespace LoraMixer.Serving;

/// <summary>A submitted request on its way to the decode loop, with where its output goes.</summary>
internal sealed class PendingRequest
{
    public PendingRequest(GenerationRequest request, ServedModel model, ModelRunner runner, LaneRouting routing, int? hardExpert,
        int maxNewTokens, CancellationToken cancellation)
    {
        Request = request;
        Model = model;
        Runner = runner;
        Routing = routing;
        HardExpert = hardExpert;
        MaxNewTokens = maxNewTokens;
        Cancellation = cancellation;
        Submitted = Stopwatch.GetTimestamp();
    }

    public GenerationRequest Request { get; }
    public ServedModel Model { get; }
    public ModelRunner Runner { get; }
    public LaneRouting Routing { get; }
    public int? HardExpert { get; }
    public int MaxNewTokens { get; }
    public CancellationToken Cancellation { get; }
    public long Submitted { get; }

    public Channel<GenerationUpdate> Output { get; } =
        Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
}
