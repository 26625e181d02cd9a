"""Independent float32 PyTorch reference for a LoRA-Mixer checkpoint over a Llama-family base.

Semantics (../shared/design/method.md sections 2-4), per decoder layer L:

    n      = input_layernorm(x)                                  the normalised attention input
    p      = softmax(W_g n / tau)           [T, E]               block scope: one router per layer
    g      = gates(p)                       soft: p | topk: k largest p (renormalised or raw) | hard: one-hot
    y      = W u (+ b) + sum_e g_e * s_e * (u A_e^T) B_e^T       for u the input of q/k/v_proj (= n) and o_proj
                                                                  (the merged attention output), same g for all four
An expert that lacks a module contributes 0 there. With router_scope "projection" each target projection
has its own router W [E, in] reading that projection's own input u.

Router inputs (block scope; docs/method.md section 3): router_input "token" reads n_t; "causal_mean" reads
[n_t ; (n_1 + ... + n_t) / t] (W_g [E, 2*hidden]). With router_input_norm "standardize" the features f become
(f - input_mean) / input_std, both stored in router.safetensors beside the weight. With routing_granularity
"sequence" every token uses the probabilities of the sequence's last position (the end of the prompt).

Experts are plain PEFT LoRA adapters; their scale s_e = alpha/r (alpha/sqrt(r) with use_rslora), with r and
alpha taken per module from rank_pattern / alpha_pattern by PEFT's rule (first key p with ^(.*\\.)?(p)$).

Usage:  /usr/bin/python3 reference_mixer.py MIXER_DIR MODE ID [ID ...]      MODE: soft | topk | hard:<expert>
"""
import json
import math
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llama  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_num_threads(1)

ATTENTION_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


# ----------------------------------------------------------------------------- PEFT adapters

def peft_is_target(cfg, module):
    """PEFT check_target_module_exists: a string is a full-match regex; a list matches by name or '.'-suffix."""
    targets = cfg["target_modules"]
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return module in targets or any(module.endswith("." + t) for t in targets)


def peft_pattern_value(patterns, module, default):
    """PEFT get_pattern_key: the first key p (insertion order) with re.match(^(.*\\.)?(p)$, module)."""
    for p, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({p})$", module):
            return value
    return default


def peft_scaling(cfg, module):
    r = peft_pattern_value(cfg.get("rank_pattern"), module, cfg["r"])
    alpha = peft_pattern_value(cfg.get("alpha_pattern"), module, cfg["lora_alpha"])
    return (alpha / math.sqrt(r)) if cfg.get("use_rslora", False) else (alpha / r), r


def load_adapter(adapter_dir):
    """{module: (A [r, in], B [out, r], scaling)} of a PEFT LoRA adapter folder, checked against its config."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    assert cfg["peft_type"] == "LORA" and not cfg.get("fan_in_fan_out", False), adapter_dir
    tensors = safetensors_io.load_file(os.path.join(adapter_dir, "adapter_model.safetensors"), upcast_to_f32=True)
    key = re.compile(r"base_model\.model\.(.+)\.(lora_[AB])\.weight")
    parts = {}
    for name, t in tensors.items():
        m = key.fullmatch(name)
        if not m:
            raise ValueError(f"{adapter_dir}: unexpected tensor {name}")
        parts.setdefault(m.group(1), {})[m.group(2)] = t
    modules = {}
    for module, ab in parts.items():
        a, b = ab["lora_A"], ab["lora_B"]
        scaling, r = peft_scaling(cfg, module)
        if not peft_is_target(cfg, module) or a.shape[0] != r or b.shape[1] != r:
            raise ValueError(f"{adapter_dir}: {module} A{list(a.shape)} B{list(b.shape)} disagrees with the config (r={r})")
        modules[module] = (a, b, scaling)
    return cfg, modules


# ----------------------------------------------------------------------------- mixer checkpoint

def load_mixer(mixer_dir):
    with open(os.path.join(mixer_dir, "mixer_config.json")) as f:
        mcfg = json.load(f)
    assert mcfg["format"] == "loramixer.mixer/1", mcfg.get("format")
    base_dir = os.path.normpath(os.path.join(mixer_dir, mcfg["base_model"]))
    experts = [load_adapter(os.path.join(mixer_dir, e["path"]))[1] for e in mcfg["experts"]]
    routers = safetensors_io.load_file(os.path.join(mixer_dir, "router.safetensors"), upcast_to_f32=True)
    return mcfg, base_dir, experts, routers


def router_key(mcfg, layer, target):
    if mcfg["router_scope"] == "block":
        return f"model.layers.{layer}.router.weight"
    return f"model.layers.{layer}.self_attn.{target}.router.weight"


def gates(p, mode, top_k=None, renormalize=True, expert=None):
    """Routing weights g [T, E] from router probabilities p [T, E] (method.md section 4)."""
    T, E = p.shape
    if mode == "soft":
        return p
    if mode == "hard":
        g = torch.zeros_like(p)
        g[:, expert] = 1.0
        return g
    if mode == "topk":
        k = min(int(top_k), E)
        values, index = torch.topk(p, k, dim=-1)
        if renormalize:
            values = values / values.sum(-1, keepdim=True)
        return torch.zeros_like(p).scatter(-1, index, values)
    raise ValueError(f"mode {mode!r}")


def mixed_linear(u, w, b, module, experts, g):
    """W u (+ b) + sum_e g_e s_e (u A_e^T) B_e^T; experts without the module add nothing."""
    y = reference_llama.linear(u, w, b)
    for e, modules in enumerate(experts):
        if module in modules:
            a, bb, s = modules[module]
            y = y + g[:, e:e + 1] * (s * ((u @ a.t()) @ bb.t()))
    return y


def router_features(mcfg, routers, weight_key, u):
    """What a router reads from u [T, in]: u, or [u ; causal mean of u], then optionally standardised."""
    f = u
    if mcfg.get("router_input", "token") == "causal_mean":
        counts = torch.arange(1, u.shape[0] + 1, dtype=u.dtype).unsqueeze(1)
        f = torch.cat([u, torch.cumsum(u, dim=0) / counts], dim=-1)
    if mcfg.get("router_input_norm", "none") == "standardize":
        prefix = weight_key[: -len(".weight")]
        f = (f - routers[prefix + ".input_mean"]) / routers[prefix + ".input_std"]
    return f


def forward_loaded(cfg, W, mcfg, experts, routers, ids, mode, top_k=None, renormalize=True, expert=None):
    """(logits [T, vocab], gates): gates is [L][T][E] (block scope) or [L][len(targets)][T][E] (projection)."""
    tau = float(mcfg.get("router_temperature", 1.0))
    targets = mcfg["targets"]
    scope = mcfg["router_scope"]
    used = []

    def route(layer, target, u):
        key = router_key(mcfg, layer, target)
        f = router_features(mcfg, routers, key, u)
        p = torch.softmax((f @ routers[key].t()) / tau, dim=-1)
        if mcfg.get("routing_granularity", "token") == "sequence":
            p = p[-1:].expand_as(p)
        return gates(p, mode, top_k, renormalize, expert)

    def projector(layer, n):
        per_target = {}
        if scope == "block":
            g_block = route(layer, None, n)
            used.append(g_block)
        else:
            used.append(per_target)

        def project(name, u, w, b):
            if name not in targets:
                return reference_llama.linear(u, w, b)
            g = g_block if scope == "block" else per_target.setdefault(name, route(layer, name, u))
            return mixed_linear(u, w, b, f"model.layers.{layer}.self_attn.{name}", experts, g)

        return project

    with torch.no_grad():
        logits = reference_llama.forward_weights(cfg, W, ids, projector)
    if scope == "block":
        gate_list = torch.stack(used)                                   # [L, T, E]
    else:
        gate_list = torch.stack([torch.stack([d[t] for t in targets]) for d in used])  # [L, targets, T, E]
    return logits, gate_list


def forward(mixer_dir, ids, mode="topk", top_k=None, renormalize=None, expert=None):
    mcfg, base_dir, experts, routers = load_mixer(mixer_dir)
    cfg = reference_llama.load_config(base_dir)
    W = reference_llama.load_weights(base_dir)
    reference_llama.check_keys(cfg, W)
    return forward_loaded(cfg, W, mcfg, experts, routers, ids, mode,
                          mcfg["top_k"] if top_k is None else top_k,
                          mcfg["renormalize"] if renormalize is None else renormalize, expert)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    mode_arg = sys.argv[2]
    hard_expert = int(mode_arg.split(":")[1]) if mode_arg.startswith("hard:") else None
    torch.set_printoptions(precision=6, linewidth=160)
    out, g = forward(sys.argv[1], [int(a) for a in sys.argv[3:]], mode_arg.split(":")[0], expert=hard_expert)
    print(out)
    print("gates", g)
