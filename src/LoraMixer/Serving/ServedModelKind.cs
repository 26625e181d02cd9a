namespace LoraMixer.Serving;

/// <summary>What a served model id stands for.</summary>
public enum ServedModelKind
{
    /// <summary>The base model as it is.</summary>
    Base,
    /// <summary>The base with one PEFT adapter.</summary>
    Adapter,
    /// <summary>A LoRA-Mixer: the base with its experts and routers.</summary>
    Mixer,
}
