"""Independent float32 PyTorch reference for a LoRA-Mixer checkpoint over a Mamba base.

Semantics (docs/method.md sections 1-4 and 7), per Mamba block L (reference_mamba.py's forward, whose
`projector` hook replaces in_proj and out_proj):

    n      = norm(x)                                 the normalised hidden state entering the block's mixer
    p      = softmax(W_g n / tau)          [T, E]    block scope: one router per block,
                                                     backbone.layers.{L}.mixer.router.weight [E, hidden]
    g      = gates(p)                                soft: p | topk: k largest p (renormalised or raw) | hard: one-hot
    y      = W u + sum_e g_e * s_e * (u A_e^T) B_e^T  for u the input of in_proj (= n) and of out_proj
                                                     (y * silu(z), d_inner wide), the same g for both
An expert that lacks a module contributes 0 there. With router_scope "projection" each target projection
has its own router backbone.layers.{L}.mixer.{in,out}_proj.router.weight [E, in] reading that projection's
own input u. Router input "token", no standardisation, per-token decisions (the format's defaults).

Experts are plain PEFT LoRA adapters (reference_mixer.load_adapter: scale alpha/r, alpha/sqrt(r) with
use_rslora, rank_pattern / alpha_pattern per module).

Usage:  /usr/bin/python3 reference_mamba_mixer.py MIXER_DIR MODE ID [ID ...]   MODE: soft | topk | hard:<expert>
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_mamba  # noqa: E402
import reference_mixer  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_num_threads(1)

MAMBA_TARGETS = ("in_proj", "out_proj")


def load_mixer(mixer_dir):
    with open(os.path.join(mixer_dir, "mixer_config.json")) as f:
        mcfg = json.load(f)
    assert mcfg["format"] == "loramixer.mixer/1", mcfg.get("format")
    assert mcfg.get("router_input", "token") == "token" and mcfg.get("router_input_norm", "none") == "none"
    assert mcfg.get("routing_granularity", "token") == "token"
    base_dir = os.path.normpath(os.path.join(mixer_dir, mcfg["base_model"]))
    experts = [reference_mixer.load_adapter(os.path.join(mixer_dir, e["path"]))[1] for e in mcfg["experts"]]
    routers = safetensors_io.load_file(os.path.join(mixer_dir, "router.safetensors"), upcast_to_f32=True)
    return mcfg, base_dir, experts, routers


def router_key(mcfg, layer, target):
    if mcfg["router_scope"] == "block":
        return f"backbone.layers.{layer}.mixer.router.weight"
    return f"backbone.layers.{layer}.mixer.{target}.router.weight"


def mixed_linear(u, w, b, module, experts, g):
    """W u (+ b) + sum_e g_e s_e (u A_e^T) B_e^T; experts without the module add nothing."""
    y = reference_mamba.linear(u, w, b)
    for e, modules in enumerate(experts):
        if module in modules:
            a, bb, s = modules[module]
            y = y + g[:, e:e + 1] * (s * ((u @ a.t()) @ bb.t()))
    return y


def forward_loaded(cfg, W, mcfg, experts, routers, ids, mode, top_k=None, renormalize=True, expert=None):
    """(logits [T, vocab], gates): gates is [L][T][E] (block scope) or [L][2][T][E] (projection: in, out)."""
    tau = float(mcfg.get("router_temperature", 1.0))
    targets = mcfg["targets"]
    scope = mcfg["router_scope"]
    used = []

    def route(layer, target, u):
        key = router_key(mcfg, layer, target)
        p = torch.softmax((u @ routers[key].t()) / tau, dim=-1)
        return reference_mixer.gates(p, mode, top_k, renormalize, expert)

    def projector(layer, n):
        per_target = {}
        if scope == "block":
            g_block = route(layer, None, n)
            used.append(g_block)
        else:
            used.append(per_target)

        def project(name, u, w, b):
            if name not in targets:
                return reference_mamba.linear(u, w, b)
            g = g_block if scope == "block" else per_target.setdefault(name, route(layer, name, u))
            return mixed_linear(u, w, b, f"backbone.layers.{layer}.mixer.{name}", experts, g)

        return project

    with torch.no_grad():
        logits = reference_mamba.forward_weights(cfg, W, ids, projector)
    if scope == "block":
        gate_list = torch.stack(used)
    else:
        gate_list = torch.stack([torch.stack([d[t] for t in targets]) for d in used])
    return logits, gate_list


def forward(mixer_dir, ids, mode="topk", top_k=None, renormalize=None, expert=None):
    mcfg, base_dir, experts, routers = load_mixer(mixer_dir)
    cfg = reference_mamba.load_config(base_dir)
    W = reference_mamba.load_weights(base_dir)
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
