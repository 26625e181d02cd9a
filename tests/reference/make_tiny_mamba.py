"""Generate tiny random Mamba-1 / Falcon-Mamba test models + expected logits for LoraMixer's C# tests.

    /usr/bin/python3 tests/reference/make_tiny_mamba.py

Writes tests/LoraMixer.Tests/Fixtures/models/{tiny-mamba,tiny-falcon-mamba}/ with config.json,
model.safetensors (F32) and expected.json = {"cases": [{"ids": [...], "logits": [[vocab floats] per position]}]}.
Expected logits come from reference_mamba.forward(model_dir, ids) and are cross-checked against a
second, loop-based float64 numpy implementation in this file.
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_mamba as ref  # noqa: E402
import safetensors_io  # noqa: E402
from make_tiny_models import write_config, write_expected  # noqa: E402

torch.set_num_threads(1)

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT_ROOT = os.path.join(REPO, "tests", "LoraMixer.Tests", "Fixtures", "models")

MAMBA_CFG = {
    "architectures": ["MambaForCausalLM"],
    "model_type": "mamba",
    "vocab_size": 128,
    "hidden_size": 64,
    "state_size": 8,
    "num_hidden_layers": 2,
    "layer_norm_epsilon": 1e-05,
    "expand": 2,
    "conv_kernel": 4,
    "use_bias": False,
    "use_conv_bias": True,
    "hidden_act": "silu",
    "initializer_range": 0.1,
    "residual_in_fp32": True,
    "time_step_rank": "auto",
    "time_step_scale": 1.0,
    "time_step_min": 0.001,
    "time_step_max": 0.1,
    "time_step_init_scheme": "random",
    "time_step_floor": 0.0001,
    "rescale_prenorm_residual": False,
    "use_cache": True,
    "use_mambapy": False,
    "tie_word_embeddings": True,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "pad_token_id": 0,
    "torch_dtype": "float32",
}

FALCON_CFG = {
    "architectures": ["FalconMambaForCausalLM"],
    "model_type": "falcon_mamba",
    "vocab_size": 128,
    "hidden_size": 64,
    "state_size": 16,
    "num_hidden_layers": 2,
    "layer_norm_epsilon": 1e-05,
    "mixer_rms_eps": 1e-06,
    "expand": 2,
    "conv_kernel": 3,
    "use_bias": True,
    "use_conv_bias": True,
    "hidden_act": "silu",
    "initializer_range": 0.1,
    "residual_in_fp32": True,
    "time_step_rank": 8,
    "time_step_scale": 1.0,
    "time_step_min": 0.001,
    "time_step_max": 0.1,
    "time_step_init_scheme": "random",
    "time_step_floor": 0.0001,
    "rescale_prenorm_residual": False,
    "use_cache": True,
    "use_mambapy": False,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 11,
    "pad_token_id": 11,
    "torch_dtype": "float32",
}


def make_weights(cfg, seed):
    """float32 weights in HF naming; A_log = log(1..N) + noise as HF initialises it, dt_proj bias the
    inverse softplus of Δ drawn log-uniformly in [0.01, 0.3] (HF draws in [time_step_min, time_step_max])."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(*shape, generator=g) * std

    H, V, N, k = cfg["hidden_size"], cfg["vocab_size"], cfg["state_size"], cfg["conv_kernel"]
    D, R = ref.d_inner(cfg), ref.time_step_rank(cfg)
    # tied: the embeddings are also the LM head, so keep them small enough for logits of std ~2-3
    W = {"backbone.embeddings.weight": normal((V, H), 0.3 if cfg["tie_word_embeddings"] else 1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{i}"
        m = f"{p}.mixer"
        W[f"{p}.norm.weight"] = 1.0 + 0.1 * torch.randn(H, generator=g)
        W[f"{m}.in_proj.weight"] = normal((2 * D, H), H ** -0.5)
        W[f"{m}.conv1d.weight"] = normal((D, 1, k), 0.5)
        if cfg["use_conv_bias"]:
            W[f"{m}.conv1d.bias"] = normal((D,), 0.2)
        W[f"{m}.x_proj.weight"] = normal((R + 2 * N, D), D ** -0.5)
        W[f"{m}.dt_proj.weight"] = normal((D, R), 0.5 * R ** -0.5)
        u = torch.rand(D, generator=g)
        dt = torch.exp(u * (math.log(0.3) - math.log(0.01)) + math.log(0.01))
        W[f"{m}.dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))  # softplus⁻¹(dt), as HF does
        W[f"{m}.A_log"] = torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(D, 1) + normal((D, N), 0.1)
        W[f"{m}.D"] = 1.0 + 0.2 * torch.randn(D, generator=g)
        W[f"{m}.out_proj.weight"] = normal((H, D), D ** -0.5)
        if cfg["use_bias"]:
            W[f"{m}.in_proj.bias"] = normal((2 * D,), 0.1)
            W[f"{m}.out_proj.bias"] = normal((H,), 0.1)
    W["backbone.norm_f.weight"] = 1.0 + 0.1 * torch.randn(H, generator=g)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = normal((V, H), H ** -0.5 * 2)
    return W


def naive_forward(cfg, W, ids):
    """Loop-based float64 numpy forward: explicit convolution taps, scalar softplus, per-channel
    recurrence. Independent of reference_mamba."""
    W = {k: v.double().numpy() for k, v in W.items()}
    H, N, k = cfg["hidden_size"], cfg["state_size"], cfg["conv_kernel"]
    D, R = ref.d_inner(cfg), ref.time_step_rank(cfg)
    eps = cfg["layer_norm_epsilon"]
    falcon = cfg["model_type"] == "falcon_mamba"
    T = len(ids)

    def rms(x, w, e):
        return w * x / np.sqrt(np.mean(x * x) + e)

    def silu(v):
        return v / (1.0 + np.exp(-v))

    def softplus(v):
        return np.where(v > 20, v, np.log1p(np.exp(np.minimum(v, 20))))

    xs = [W["backbone.embeddings.weight"][t].copy() for t in ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{layer}"
        m = f"{p}.mixer"
        u = [rms(x, W[f"{p}.norm.weight"], eps) for x in xs]
        proj = [W[f"{m}.in_proj.weight"] @ v + W.get(f"{m}.in_proj.bias", 0.0) for v in u]
        hs = [pr[:D] for pr in proj]
        zs = [pr[D:] for pr in proj]
        conv = []
        for t in range(T):
            acc = W.get(f"{m}.conv1d.bias", np.zeros(D)).copy()
            for j in range(k):  # tap j sees position t - (k - 1) + j
                src = t - (k - 1) + j
                if src >= 0:
                    acc += W[f"{m}.conv1d.weight"][:, 0, j] * hs[src]
            conv.append(silu(acc))
        A = -np.exp(W[f"{m}.A_log"])
        state = np.zeros((D, N))
        out = []
        for t in range(T):
            params = W[f"{m}.x_proj.weight"] @ conv[t]
            dt, B, C = params[:R], params[R:R + N], params[R + N:]
            if falcon:
                e = cfg["mixer_rms_eps"]
                dt, B, C = rms(dt, 1.0, e), rms(B, 1.0, e), rms(C, 1.0, e)
            delta = softplus(W[f"{m}.dt_proj.weight"] @ dt + W[f"{m}.dt_proj.bias"])
            y = np.zeros(D)
            for d in range(D):
                state[d] = np.exp(delta[d] * A[d]) * state[d] + delta[d] * B * conv[t][d]
                y[d] = state[d] @ C + W[f"{m}.D"][d] * conv[t][d]
            y = y * silu(zs[t])
            out.append(W[f"{m}.out_proj.weight"] @ y + W.get(f"{m}.out_proj.bias", 0.0))
        xs = [x + o for x, o in zip(xs, out)]
    head = W.get("lm_head.weight", W["backbone.embeddings.weight"])
    return np.stack([head @ rms(x, W["backbone.norm_f.weight"], eps) for x in xs])


def build(name, cfg, seed):
    d = os.path.join(OUT_ROOT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    write_config(d, cfg)
    W32 = make_weights(cfg, seed)
    safetensors_io.save_file({k: v.contiguous() for k, v in W32.items()}, os.path.join(d, "model.safetensors"), {"format": "pt"})
    W = ref.load_weights(d)
    assert set(W) == set(W32)
    assert ("lm_head.weight" in W) == (not cfg["tie_word_embeddings"])

    g = torch.Generator().manual_seed(seed + 1000)
    V = cfg["vocab_size"]
    id_lists = [[1], torch.randint(0, V, (7,), generator=g).tolist(),
                [1] + torch.randint(0, V, (19,), generator=g).tolist(),
                [1] + torch.randint(0, V, (69,), generator=g).tolist()]
    id_lists[1][-1] = V - 1
    cases = []
    for ids in id_lists:
        logits = ref.forward(d, ids)
        assert logits.shape == (len(ids), V) and logits.dtype == torch.float32 and torch.isfinite(logits).all()
        cases.append((ids, logits))

    long_ids, long_logits = cases[3]
    pre = ref.forward(d, long_ids[:20])
    assert torch.allclose(pre, long_logits[:20], atol=1e-5), "causality"
    for ids, logits in cases:
        naive = naive_forward(cfg, W, ids)
        diff = np.abs(naive - logits.double().numpy()).max()
        assert diff < 5e-5, f"{name}: reference vs naive float64 {diff}"
    # the state must carry information far back: perturbing token 0 moves the logits at position 69
    moved = ref.forward(d, [5] + long_ids[1:])
    far = (moved[-1] - long_logits[-1]).abs().max().item()
    assert far > 1e-3, f"{name}: long-range effect only {far}"
    sens = {"far_effect_at_69": far}
    if cfg["model_type"] == "falcon_mamba":
        plain = ref.forward_weights(dict(cfg, model_type="mamba"), W, long_ids)
        sens["without_bcdt_rms"] = (plain - long_logits).abs().max().item()
        assert sens["without_bcdt_rms"] > 1e-2
    write_expected(d, cases)
    print(f"{name}: logits std {long_logits.std():.3f}, naive diff ok, sensitivity {sens}, "
          f"weights {os.path.getsize(os.path.join(d, 'model.safetensors'))} B, "
          f"expected {os.path.getsize(os.path.join(d, 'expected.json'))} B")


if __name__ == "__main__":
    build("tiny-mamba", MAMBA_CFG, 1234)
    build("tiny-falcon-mamba", FALCON_CFG, 5678)
