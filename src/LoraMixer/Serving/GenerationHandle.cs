using System.Runtime.CompilerServices;
using System.Text;

namespace LoraMixer.Serving;

/// <summary>The output of one submitted request: its text as it is generated, then its summary.</summary>
public sealed class GenerationHandle
{
    private readonly PendingRequest _request;

    internal GenerationHandle(PendingRequest request) => _request = request;

    /// <summary>The served model that runs the request.</summary>
    public ServedModel Model => _request.Model;

    /// <summary>Tokens of the prompt.</summary>
    public int PromptTokens => _request.Request.PromptIds.Count;

    /// <summary>
    /// The updates as they come; the last one carries the <see cref="GenerationSummary"/>. Throws
    /// <see cref="OperationCanceledException"/> when the request was cancelled and <see cref="ServingRequestException"/>
    /// (status 500 or 503) when the server could not finish it.
    /// </summary>
    public async IAsyncEnumerable<GenerationUpdate> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var update in _request.Output.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            yield return update;
    }

    /// <summary>Waits for the whole text and the summary.</summary>
    public async Task<(string Text, GenerationSummary Summary)> CompleteAsync(CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        GenerationSummary? summary = null;
        await foreach (var update in ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            text.Append(update.Text);
            summary ??= update.Summary;
        }
        return (text.ToString(), summary ?? throw new InvalidOperationException("the request ended without a summary"));
    }
}
