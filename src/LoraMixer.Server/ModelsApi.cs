using System.Text.Json.Nodes;
using LoraMixer.Serving;
using Microsoft.AspNetCore.Http;

namespace LoraMixer.Server;

/// <summary><c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the base, every adapter and every mixer, with their experts.</summary>
internal sealed class ModelsApi(ServingEngine engine)
{
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private JsonObject Describe(ServedModel m) => new()
    {
        ["id"] = m.Id,
        ["object"] = "model",
        ["created"] = _created,
        ["owned_by"] = "loramixer",
        ["root"] = m.Parent ?? m.Id,
        ["parent"] = m.Parent,
        ["max_model_len"] = engine.ContextLength,
        ["lora_mixer"] = new JsonObject
        {
            ["kind"] = m.Kind.ToString().ToLowerInvariant(),
            ["experts"] = new JsonArray(m.Experts.Select(e => (JsonNode)e).ToArray()),
            ["top_k"] = m.TopK,
        },
    };

    public Task List(HttpContext context)
    {
        var body = new JsonObject { ["object"] = "list", ["data"] = new JsonArray(engine.Models.Select(m => (JsonNode)Describe(m)).ToArray()) };
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(body.ToJsonString(Json.Options), context.RequestAborted);
    }

    public Task One(HttpContext context, string id)
    {
        if (engine.FindModel(id) is not { } model)
            return OpenAiErrors.Write(context, new ServingRequestException(404, $"The model '{id}' does not exist.", "model", "model_not_found"), engine.Metrics);
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(Describe(model).ToJsonString(Json.Options), context.RequestAborted);
    }
}
