namespace LoraMixer.Serving;

/// <summary>One message of a conversation: its role (<c>system</c>, <c>user</c> or <c>assistant</c>) and text.</summary>
public sealed record ChatTurn(string Role, string Content);
