"""Independent float32 PyTorch reference forward pass for Mamba-1 and Falcon-Mamba causal LMs.

Follows the slow (pure torch) path of Hugging Face transformers' modeling_mamba.py and
modeling_falcon_mamba.py (no cache, batch of 1, sequential selective scan):

    x = embeddings[ids]
    for each layer:  x = x + mixer(norm(x))                    (MambaRMSNorm, eps layer_norm_epsilon)
    mixer(u):
        h, z   = in_proj(u).chunk(2)                            (d_inner = expand * hidden each)
        h      = silu(causal depthwise conv1d(h))               (padding k-1, truncated to T)
        dt,B,C = x_proj(h).split([time_step_rank, N, N])
        falcon_mamba only: dt, B, C = rms(dt), rms(B), rms(C)   (no weight, eps mixer_rms_eps)
        delta  = softplus(dt_proj(dt))                          (dt_proj has a bias)
        A      = -exp(A_log)
        s_t    = exp(delta_t A) * s_{t-1} + delta_t B_t h_t     (s: [d_inner, N], s_{-1} = 0)
        y_t    = s_t C_t + D h_t
        return out_proj(y * silu(z))
    logits = lm_head(norm_f(x))   (lm_head = embeddings when lm_head.weight is absent / tied)

Usage:  /usr/bin/python3 reference_mamba.py MODEL_DIR ID [ID ...]   (prints logits)
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

torch.set_num_threads(1)


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def load_weights(model_dir):
    return safetensors_io.load_file(os.path.join(model_dir, "model.safetensors"), upcast_to_f32=True)


def time_step_rank(cfg):
    r = cfg.get("time_step_rank", "auto")
    return math.ceil(cfg["hidden_size"] / 16) if r == "auto" else int(r)


def d_inner(cfg):
    return int(cfg.get("expand", 2) * cfg["hidden_size"])


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return x if weight is None else weight * x


def linear(u, w, b=None):
    return F.linear(u, w, b)


def mixer(cfg, W, p, u, project=None):
    """u: [T, hidden] -> [T, hidden]. project(name, input, weight, bias) replaces in_proj / out_proj when given
    (reference_mamba_mixer.py's hook); None = the plain linear."""
    project = project or (lambda name, x, w, b: linear(x, w, b))
    T = u.shape[0]
    D, N, R, k = d_inner(cfg), cfg["state_size"], time_step_rank(cfg), cfg["conv_kernel"]
    proj = project("in_proj", u, W[f"{p}.in_proj.weight"], W.get(f"{p}.in_proj.bias"))  # [T, 2D]
    h, z = proj[:, :D], proj[:, D:]
    # depthwise causal convolution as torch.nn.Conv1d(D, D, k, groups=D, padding=k-1)[..., :T]
    conv = F.conv1d(h.t().unsqueeze(0), W[f"{p}.conv1d.weight"], W.get(f"{p}.conv1d.bias"),
                    padding=k - 1, groups=D)[0, :, :T].t()
    h = F.silu(conv)  # [T, D]
    params = F.linear(h, W[f"{p}.x_proj.weight"])
    dt, B, C = params[:, :R], params[:, R:R + N], params[:, R + N:]
    if cfg["model_type"] == "falcon_mamba":
        eps = cfg.get("mixer_rms_eps", 1e-6)
        B, C, dt = rms_norm(B, None, eps), rms_norm(C, None, eps), rms_norm(dt, None, eps)
    delta = F.softplus(F.linear(dt, W[f"{p}.dt_proj.weight"], W[f"{p}.dt_proj.bias"]))  # [T, D]
    A = -torch.exp(W[f"{p}.A_log"])  # [D, N]
    state = torch.zeros(D, N)
    ys = []
    for t in range(T):
        state = torch.exp(delta[t][:, None] * A) * state + (delta[t] * h[t])[:, None] * B[t][None, :]
        ys.append(state @ C[t])
    y = torch.stack(ys) + h * W[f"{p}.D"]
    y = y * F.silu(z)
    return project("out_proj", y, W[f"{p}.out_proj.weight"], W.get(f"{p}.out_proj.bias"))


def forward_weights(cfg, W, ids, projector=None):
    """projector(layer, n) -> project(name, input, weight, bias), given the normalised mixer input n of the
    layer (the router input), replaces the layer's in_proj / out_proj; None = the plain model."""
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = W["backbone.embeddings.weight"][torch.tensor(ids, dtype=torch.long)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{i}"
        n = rms_norm(x, W[f"{p}.norm.weight"], eps)
        x = x + mixer(cfg, W, f"{p}.mixer", n, projector(i, n) if projector else None)
    x = rms_norm(x, W["backbone.norm_f.weight"], eps)
    head = W.get("lm_head.weight", W["backbone.embeddings.weight"])
    return x @ head.t()


def forward(model_dir, ids):
    """Logits [T, vocab] (float32) for the token ids of one sequence."""
    with torch.no_grad():
        return forward_weights(load_config(model_dir), load_weights(model_dir), ids)


if __name__ == "__main__":
    logits = forward(sys.argv[1], [int(a) for a in sys.argv[2:]])
    torch.set_printoptions(precision=6, linewidth=200)
    print(logits)
