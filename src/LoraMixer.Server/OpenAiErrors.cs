using System.Text.Json.Nodes;
using LoraMixer.Serving;
using Microsoft.AspNetCore.Http;

namespace LoraMixer.Server;

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
internal static class OpenAiErrors
{
    public static JsonObject Body(ServingRequestException e) => new()
    {
        ["error"] = new JsonObject
        {
            ["message"] = e.Message,
            ["type"] = e.Type,
            ["param"] = e.Param,
            ["code"] = e.Code,
        },
    };

    /// <summary>Writes <paramref name="e"/> as the response (status, Retry-After for 429, JSON body).</summary>
    public static async Task Write(HttpContext context, ServingRequestException e, ServingMetrics? metrics)
    {
        metrics?.RecordHttpError(e.Status);
        if (context.Response.HasStarted) return;
        context.Response.StatusCode = e.Status;
        if (e.Status == 429) context.Response.Headers.RetryAfter = "1";
        if (e.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer";
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(Body(e).ToJsonString(Json.Options), context.RequestAborted);
    }
}
