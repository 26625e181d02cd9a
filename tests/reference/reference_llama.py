"""Independent float32 PyTorch reference forward pass for Llama-family causal LMs.

Follows the semantics of Hugging Face transformers' modeling_llama.py,
modeling_mistral.py and modeling_qwen2.py (eager attention, no KV cache, batch of 1):

    x = embed_tokens[ids]
    for each layer:
        h = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = input_layernorm(x)
        x = h + down_proj(silu(gate_proj(m)) * up_proj(m))                          m = post_attention_layernorm(h)
    logits = lm_head(norm(x))        (lm_head = embed_tokens when tied and lm_head.weight absent)

Everything is computed in float32; F16/BF16 weights are upcast to float32 at load.
Usage:  /usr/bin/python3 reference_llama.py MODEL_DIR ID [ID ...]   (prints logits)
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- config / loading

def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def load_weights(model_dir):
    """All tensors of the checkpoint, upcast to float32. Supports a single
    model.safetensors or a sharded model.safetensors.index.json."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single_path = os.path.join(model_dir, "model.safetensors")
    weights = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        weight_map = index["weight_map"]
        for shard in sorted(set(weight_map.values())):
            part = safetensors_io.load_file(os.path.join(model_dir, shard), upcast_to_f32=True)
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{name} found in {shard} but index says {weight_map.get(name)}")
                weights[name] = t
        missing = set(weight_map) - set(weights)
        if missing:
            raise ValueError(f"tensors listed in index but not found: {sorted(missing)}")
    elif os.path.exists(single_path):
        weights = safetensors_io.load_file(single_path, upcast_to_f32=True)
    else:
        raise FileNotFoundError(f"no model.safetensors[.index.json] in {model_dir}")
    return weights


def head_dim_of(cfg):
    hd = cfg.get("head_dim")
    return hd if hd else cfg["hidden_size"] // cfg["num_attention_heads"]


def attention_biases(cfg):
    """(q/k/v bias, o bias) following the HF classes."""
    if cfg.get("model_type") == "qwen2":
        return True, False  # Qwen2Attention: q/k/v bias=True, o_proj bias=False
    ab = bool(cfg.get("attention_bias", False))  # Llama: all four use config.attention_bias
    return ab, ab


# ----------------------------------------------------------------------------- RoPE

def default_inv_freq(cfg):
    """HF _compute_default_rope_parameters (computed in float32 like HF)."""
    dim = head_dim_of(cfg)
    dim = int(dim * cfg.get("partial_rotary_factor", 1.0))
    base = float(cfg.get("rope_theta", 10000.0))
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim
    return 1.0 / (base ** exponents)


def llama3_inv_freq(inv_freq, rope_scaling):
    """HF _compute_llama3_parameters, written from its definition.

    wavelen = 2*pi / inv_freq
      wavelen <  high_freq_wavelen              -> unchanged           (high frequencies)
      wavelen >  low_freq_wavelen               -> inv_freq / factor   (low frequencies)
      otherwise (medium)                        -> (1 - s) * inv_freq / factor + s * inv_freq
                                                   s = (old_ctx / wavelen - low_ff) / (high_ff - low_ff)
    with low_freq_wavelen = old_ctx / low_ff and high_freq_wavelen = old_ctx / high_ff.
    """
    factor = float(rope_scaling["factor"])
    low_ff = float(rope_scaling["low_freq_factor"])
    high_ff = float(rope_scaling["high_freq_factor"])
    old_ctx = float(rope_scaling["original_max_position_embeddings"])
    low_freq_wavelen = old_ctx / low_ff
    high_freq_wavelen = old_ctx / high_ff

    wavelen = 2 * math.pi / inv_freq
    out = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low_ff) / (high_ff - low_ff)
    smoothed = (1 - smooth) * out / factor + smooth * out
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, smoothed, out)


def rope_type(cfg):
    rs = cfg.get("rope_scaling")
    if not rs:
        return "default"
    return rs.get("rope_type", rs.get("type", "default"))


def compute_inv_freq(cfg):
    """inv_freq after rope_scaling; attention_scaling is 1.0 for default/linear/llama3."""
    inv_freq = default_inv_freq(cfg)
    kind = rope_type(cfg)
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(cfg["rope_scaling"]["factor"])
    if kind == "llama3":
        return llama3_inv_freq(inv_freq, cfg["rope_scaling"])
    raise NotImplementedError(f"rope_scaling type {kind!r}")


def rope_cos_sin(cfg, seq_len):
    inv_freq = compute_inv_freq(cfg)                        # [hd/2]
    pos = torch.arange(seq_len, dtype=torch.float32)        # positions 0..T-1
    freqs = pos[:, None] * inv_freq[None, :]                # [T, hd/2] (HF: inv_freq @ positions, f32)
    emb = torch.cat([freqs, freqs], dim=-1)                 # [T, hd]  duplicated, rotate_half layout
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x: [heads, T, hd]; cos/sin: [T, hd]."""
    return x * cos + rotate_half(x) * sin


# ----------------------------------------------------------------------------- blocks

def rms_norm(x, weight, eps):
    x32 = x.to(torch.float32)
    var = x32.pow(2).mean(-1, keepdim=True)
    return weight * (x32 * torch.rsqrt(var + eps))


def linear(x, w, b=None):
    y = x @ w.t()
    return y + b if b is not None else y


def repeat_kv(x, n_rep):
    """HF repeat_kv: [kv_heads, T, hd] -> [kv_heads * n_rep, T, hd]; head h uses kv head h // n_rep."""
    return x if n_rep == 1 else torch.repeat_interleave(x, n_rep, dim=0)


def attention(cfg, W, prefix, x, cos, sin, project=None):
    """`project(name, inp, weight, bias)` computes q/k/v/o_proj (default: the plain linear); the
    LoRA-Mixer reference (reference_mixer.py) passes one that adds the routed expert updates."""
    T = x.shape[0]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    hd = head_dim_of(cfg)
    qkv_bias, o_bias = attention_biases(cfg)

    project = project or (lambda name, inp, w, b: linear(inp, w, b))

    def proj(name, bias):
        return project(name, x, W[f"{prefix}.{name}.weight"], W[f"{prefix}.{name}.bias"] if bias else None)

    q = proj("q_proj", qkv_bias).view(T, n_heads, hd).transpose(0, 1)  # [H, T, hd]
    k = proj("k_proj", qkv_bias).view(T, n_kv, hd).transpose(0, 1)     # [KV, T, hd]
    v = proj("v_proj", qkv_bias).view(T, n_kv, hd).transpose(0, 1)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    k = repeat_kv(k, n_heads // n_kv)
    v = repeat_kv(v, n_heads // n_kv)

    scores = (q @ k.transpose(1, 2)) * (hd ** -0.5)                    # [H, T, T]
    qi = torch.arange(T)[:, None]
    kj = torch.arange(T)[None, :]
    allowed = kj <= qi
    window = sliding_window_of(cfg)
    if window is not None:
        allowed = allowed & (kj > qi - window)
    scores = scores.masked_fill(~allowed, float("-inf"))
    probs = torch.softmax(scores.to(torch.float32), dim=-1).to(v.dtype)  # no-op in float32; lets a float64 self-check run
    out = (probs @ v).transpose(0, 1).reshape(T, n_heads * hd)        # [T, H*hd]
    return project("o_proj", out, W[f"{prefix}.o_proj.weight"], W[f"{prefix}.o_proj.bias"] if o_bias else None)


def sliding_window_of(cfg):
    if cfg.get("model_type") == "qwen2":
        if cfg.get("use_sliding_window", False):
            raise NotImplementedError("Qwen2 use_sliding_window=true")
        return None
    if cfg.get("model_type") == "mistral":
        return cfg.get("sliding_window")  # None -> full causal attention
    return None


def mlp(cfg, W, prefix, x):
    mb = bool(cfg.get("mlp_bias", False))

    def proj(name, inp):
        return linear(inp, W[f"{prefix}.{name}.weight"], W[f"{prefix}.{name}.bias"] if mb else None)

    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise NotImplementedError(f"hidden_act {act}")
    return proj("down_proj", torch.nn.functional.silu(proj("gate_proj", x)) * proj("up_proj", x))


# ----------------------------------------------------------------------------- model

def lm_head_weight(cfg, W):
    if "lm_head.weight" in W:
        return W["lm_head.weight"]
    if cfg.get("tie_word_embeddings", False):
        return W["model.embed_tokens.weight"]
    raise KeyError("lm_head.weight missing and tie_word_embeddings is false")


def forward_weights(cfg, W, ids, attention_projector=None):
    """logits [T, vocab] (float32) for token ids (list of ints).

    attention_projector(layer_index, n) -> project: optional hook called once per layer with the
    normalised attention input n [T, hidden]; the returned `project` replaces the q/k/v/o linears."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    T = ids.shape[0]
    eps = float(cfg["rms_norm_eps"])
    x = W["model.embed_tokens.weight"][ids]
    cos, sin = rope_cos_sin(cfg, T)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        n = rms_norm(x, W[f"{p}.input_layernorm.weight"], eps)
        project = attention_projector(i, n) if attention_projector else None
        h = x + attention(cfg, W, f"{p}.self_attn", n, cos, sin, project)
        x = h + mlp(cfg, W, f"{p}.mlp", rms_norm(h, W[f"{p}.post_attention_layernorm.weight"], eps))
    x = rms_norm(x, W["model.norm.weight"], eps)
    return x @ lm_head_weight(cfg, W).t()


def check_keys(cfg, W):
    """Raise if the checkpoint has tensors the forward pass would silently ignore (or lacks some)."""
    qkv_bias, o_bias = attention_biases(cfg)
    mb = bool(cfg.get("mlp_bias", False))
    expected = {"model.embed_tokens.weight", "model.norm.weight"}
    if not cfg.get("tie_word_embeddings", False) or "lm_head.weight" in W:
        expected.add("lm_head.weight")
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        expected |= {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"}
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            expected.add(f"{p}.self_attn.{n}.weight")
            if (o_bias if n == "o_proj" else qkv_bias):
                expected.add(f"{p}.self_attn.{n}.bias")
        for n in ("gate_proj", "up_proj", "down_proj"):
            expected.add(f"{p}.mlp.{n}.weight")
            if mb:
                expected.add(f"{p}.mlp.{n}.bias")
    present = {k for k in W if not k.endswith("rotary_emb.inv_freq")}
    if present != expected:
        raise ValueError(f"missing: {sorted(expected - present)}; unexpected: {sorted(present - expected)}")


def forward(model_dir, ids):
    """Load config.json + weights from model_dir and return float32 logits [T, vocab]."""
    cfg = load_config(model_dir)
    W = load_weights(model_dir)
    check_keys(cfg, W)
    with torch.no_grad():
        return forward_weights(cfg, W, ids)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    torch.set_printoptions(precision=6, linewidth=160)
    print(forward(sys.argv[1], [int(a) for a in sys.argv[2:]]))
