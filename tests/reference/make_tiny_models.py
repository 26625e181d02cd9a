"""Generate tiny random Llama-family test models + expected logits for LoraMixer's C# tests.

    /usr/bin/python3 tests/reference/make_tiny_models.py

Writes tests/LoraMixer.Tests/Fixtures/models/{tiny-llama,tiny-qwen2,tiny-mistral}/ with
config.json, safetensors weights and expected.json = {"cases": [{"ids": [...], "logits": [[vocab floats] per position]}]}.
Expected logits come from reference_llama.forward(model_dir, ids), i.e. from the weights as
stored on disk (F16/BF16 rounding included), and are cross-checked against a second, naive
float64 numpy implementation in this file.
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_llama as ref  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_num_threads(1)

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT_ROOT = os.path.join(REPO, "tests", "LoraMixer.Tests", "Fixtures", "models")

# ----------------------------------------------------------------------------- configs

LLAMA_CFG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    # original_max_position_embeddings=32 (not 16) so that with head_dim 16 / theta 1e4 the
    # 8 frequencies hit all three llama3 regimes: wavelen 6.28 < 8 (unchanged),
    # 8 <= 19.9 <= 32 (smoothed), 62.8.. > 32 (divided by factor).
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 32,
    },
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}

QWEN2_CFG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "attention_dropout": 0.0,
    "use_sliding_window": False,
    "sliding_window": 128,
    "max_window_layers": 2,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "bfloat16",
}

MISTRAL_CFG = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 24,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "linear", "factor": 2.0},
    "sliding_window": None,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float16",
}

# ----------------------------------------------------------------------------- random weights


def make_weights(cfg, seed, embed_std, head_std, qk_std, lin_std, out_std, bias_std=0.0):
    """float32 master weights in HF naming / [out, in] layout (generation order is fixed)."""
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(*shape, generator=g) * std

    def norm_w(n):
        return 1.0 + 0.1 * torch.randn(n, generator=g)

    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], ref.head_dim_of(cfg)
    qkv_bias, o_bias = ref.attention_biases(cfg)
    W = {"model.embed_tokens.weight": normal((V, H), embed_std)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        W[f"{p}.input_layernorm.weight"] = norm_w(H)
        W[f"{p}.self_attn.q_proj.weight"] = normal((nh * hd, H), qk_std)
        W[f"{p}.self_attn.k_proj.weight"] = normal((nkv * hd, H), qk_std)
        W[f"{p}.self_attn.v_proj.weight"] = normal((nkv * hd, H), lin_std)
        W[f"{p}.self_attn.o_proj.weight"] = normal((H, nh * hd), out_std)
        if qkv_bias:
            W[f"{p}.self_attn.q_proj.bias"] = normal((nh * hd,), bias_std)
            W[f"{p}.self_attn.k_proj.bias"] = normal((nkv * hd,), bias_std)
            W[f"{p}.self_attn.v_proj.bias"] = normal((nkv * hd,), bias_std)
        assert not o_bias
        W[f"{p}.post_attention_layernorm.weight"] = norm_w(H)
        W[f"{p}.mlp.gate_proj.weight"] = normal((I, H), lin_std)
        W[f"{p}.mlp.up_proj.weight"] = normal((I, H), lin_std)
        W[f"{p}.mlp.down_proj.weight"] = normal((H, I), out_std)
    W["model.norm.weight"] = norm_w(H)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = normal((V, H), head_std)
    return W


# ----------------------------------------------------------------------------- writing


def write_config(d, cfg):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def write_sharded(d, W, n_shards):
    """Split tensors (in sorted-name order) into n_shards files of roughly equal byte size and
    write model.safetensors.index.json like HF save_pretrained does."""
    names = sorted(W)
    sizes = [W[n].numel() * W[n].element_size() for n in names]
    total = sum(sizes)
    shards, cur, acc = [[] for _ in range(n_shards)], 0, 0
    for n, s in zip(names, sizes):
        if acc >= total * (cur + 1) / n_shards and cur < n_shards - 1:
            cur += 1
        shards[cur].append(n)
        acc += s
    weight_map = {}
    for k, members in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        safetensors_io.save_file({n: W[n] for n in members}, os.path.join(d, fname), {"format": "pt"})
        for n in members:
            weight_map[n] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")


def fmt(x):
    return "%.9g" % x


def write_expected(d, cases):
    """expected.json with float32 logits printed to 9 significant digits (exact float32 round trip)."""
    parts = []
    for ids, logits in cases:
        rows = ",\n".join("      [" + ", ".join(fmt(v) for v in row) + "]" for row in logits.tolist())
        parts.append('    {\n      "ids": %s,\n      "logits": [\n%s\n      ]\n    }' % (json.dumps(ids), rows))
    with open(os.path.join(d, "expected.json"), "w") as f:
        f.write('{\n  "cases": [\n' + ",\n".join(parts) + "\n  ]\n}\n")


# ----------------------------------------------------------------------------- naive float64 cross-check


def naive_inv_freq(cfg):
    """Scalar-by-scalar (python float64) RoPE frequencies incl. rope_scaling."""
    hd = ref.head_dim_of(cfg)
    base = cfg["rope_theta"]
    freqs = [1.0 / base ** (2 * i / hd) for i in range(hd // 2)]
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    out = []
    for f in freqs:
        if kind == "linear":
            f = f / rs["factor"]
        elif kind == "llama3":
            wl = 2 * math.pi / f
            old = rs["original_max_position_embeddings"]
            lo_wl, hi_wl = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
            if wl < hi_wl:
                pass
            elif wl > lo_wl:
                f = f / rs["factor"]
            else:
                s = (old / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
                f = (1 - s) * f / rs["factor"] + s * f
        else:
            assert kind is None
        out.append(f)
    return out


def naive_forward(cfg, W, ids):
    """Loop-based float64 numpy forward: explicit (i, i + hd/2) pair rotations, explicit
    kv-head index h // (H / KV), explicit causal loop softmax. Independent of reference_llama."""
    W = {k: v.double().numpy() for k, v in W.items()}
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv, hd = cfg["num_key_value_heads"], ref.head_dim_of(cfg)
    eps = cfg["rms_norm_eps"]
    qwen = cfg["model_type"] == "qwen2"
    freqs = naive_inv_freq(cfg)
    T = len(ids)

    def rms(x, w):
        return w * x / np.sqrt(np.mean(x * x) + eps)

    def rot(vec, pos):
        out = vec.copy()
        half = hd // 2
        for i in range(half):
            c, s = math.cos(pos * freqs[i]), math.sin(pos * freqs[i])
            a, b = vec[i], vec[i + half]
            out[i], out[i + half] = a * c - b * s, b * c + a * s
        return out

    xs = [W["model.embed_tokens.weight"][t].copy() for t in ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        a = f"{p}.self_attn"
        Q, K, V = [], [], []
        for pos, x in enumerate(xs):
            n = rms(x, W[f"{p}.input_layernorm.weight"])
            q, k, v = (W[f"{a}.{m}_proj.weight"] @ n for m in "qkv")
            if qwen:
                q, k, v = q + W[f"{a}.q_proj.bias"], k + W[f"{a}.k_proj.bias"], v + W[f"{a}.v_proj.bias"]
            Q.append([rot(q[h * hd:(h + 1) * hd], pos) for h in range(nh)])
            K.append([rot(k[h * hd:(h + 1) * hd], pos) for h in range(nkv)])
            V.append([v[h * hd:(h + 1) * hd] for h in range(nkv)])
        new = []
        for t in range(T):
            heads = []
            for h in range(nh):
                kvh = h // (nh // nkv)
                sc = np.array([Q[t][h] @ K[j][kvh] / math.sqrt(hd) for j in range(t + 1)])
                e = np.exp(sc - sc.max())
                pr = e / e.sum()
                heads.append(sum(pr[j] * V[j][kvh] for j in range(t + 1)))
            hvec = xs[t] + W[f"{a}.o_proj.weight"] @ np.concatenate(heads)
            m = rms(hvec, W[f"{p}.post_attention_layernorm.weight"])
            gate = W[f"{p}.mlp.gate_proj.weight"] @ m
            up = W[f"{p}.mlp.up_proj.weight"] @ m
            new.append(hvec + W[f"{p}.mlp.down_proj.weight"] @ (gate / (1 + np.exp(-gate)) * up))
        xs = new
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return np.stack([head @ rms(x, W["model.norm.weight"]) for x in xs])


# ----------------------------------------------------------------------------- self checks


def self_checks():
    # safetensors round trip for all three storage dtypes, BF16 = torch's RNE rounding
    import tempfile
    g = torch.Generator().manual_seed(0)
    t = torch.randn(5, 7, generator=g)
    t[0, 0] = 1.0 + 2 ** -8  # exact tie -> even (1.0)
    t[0, 1] = 1.0 + 3 * 2 ** -8  # exact tie -> even (1 + 2**-6)
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "x.safetensors")
        safetensors_io.save_file({"a": t, "b": t.half(), "c": t.bfloat16()}, path)
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
        assert n % 8 == 0
        back = safetensors_io.load_file(path, upcast_to_f32=True)
        assert torch.equal(back["a"], t)
        assert torch.equal(back["b"], t.half().float())
        assert torch.equal(back["c"], t.bfloat16().float())
        assert back["c"][0, 0].item() == 1.0 and back["c"][0, 1].item() == 1.0 + 2 ** -6
        raw_hi = (t.view(torch.int32) >> 16).to(torch.int16)  # truncation; must differ somewhere from RNE
        assert not torch.equal(raw_hi, t.bfloat16().view(torch.int16))

    # llama3: no rope_scaling -> default freqs; factor 1 -> identity; tiny-llama config -> all 3 regimes
    base_cfg = dict(LLAMA_CFG, rope_scaling=None)
    default = ref.default_inv_freq(base_cfg)
    assert torch.equal(ref.compute_inv_freq(base_cfg), default)
    ident = ref.llama3_inv_freq(default, dict(LLAMA_CFG["rope_scaling"], factor=1.0))
    assert torch.allclose(ident, default, rtol=1e-6, atol=0)
    scaled = ref.compute_inv_freq(LLAMA_CFG)
    ratio = (default / scaled).tolist()
    assert abs(ratio[0] - 1) < 1e-6, ratio  # high frequency unchanged
    assert 1.01 < ratio[1] < 7.99, ratio  # smoothed
    assert all(abs(r - 8) < 1e-5 for r in ratio[2:]), ratio  # low frequencies / factor
    assert np.allclose(scaled.double().numpy(), naive_inv_freq(LLAMA_CFG), rtol=1e-6)
    assert np.allclose(ref.compute_inv_freq(MISTRAL_CFG).double().numpy(), naive_inv_freq(MISTRAL_CFG), rtol=1e-6)
    assert ref.compute_inv_freq(MISTRAL_CFG).shape == (12,)

    # rotate_half RoPE == complex multiplication of (x[:d/2] + i x[d/2:]) by e^{i pos theta}
    cos, sin = ref.rope_cos_sin(LLAMA_CFG, 9)
    x = torch.randn(3, 9, 16, generator=g)
    y = ref.apply_rope(x, cos, sin)
    ang = torch.arange(9, dtype=torch.float32)[:, None] * ref.compute_inv_freq(LLAMA_CFG)[None, :]
    z = torch.complex(x[..., :8], x[..., 8:]) * torch.polar(torch.ones_like(ang), ang)
    assert torch.allclose(y, torch.cat([z.real, z.imag], -1), atol=1e-5)

    # repeat_kv: head h uses kv head h // n_rep
    kv = torch.arange(2 * 3 * 4.0).view(2, 3, 4)
    rep = ref.repeat_kv(kv, 2)
    assert all(torch.equal(rep[h], kv[h // 2]) for h in range(4))
    print("self checks: ok")


# ----------------------------------------------------------------------------- main


def build(name, cfg, W32, store_dtype, n_shards, seed):
    d = os.path.join(OUT_ROOT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    write_config(d, cfg)
    stored = {k: v.to(store_dtype).contiguous() for k, v in W32.items()}
    if n_shards > 1:
        write_sharded(d, stored, n_shards)
    else:
        safetensors_io.save_file(stored, os.path.join(d, "model.safetensors"), {"format": "pt"})

    # weights as the C# side will see them (rounded to the storage dtype, upcast to f32)
    W = ref.load_weights(d)
    assert set(W) == set(stored)
    for k in W:
        assert torch.equal(W[k], stored[k].float()), k
    ref.check_keys(cfg, W)
    if cfg["tie_word_embeddings"]:
        assert "lm_head.weight" not in W
        assert ref.lm_head_weight(cfg, W) is W["model.embed_tokens.weight"]

    g = torch.Generator().manual_seed(seed + 1000)
    V = cfg["vocab_size"]
    id_lists = [[1], torch.randint(0, V, (7,), generator=g).tolist(),
                [1] + torch.randint(0, V, (19,), generator=g).tolist(),
                [1] + torch.randint(0, V, (39,), generator=g).tolist()]
    id_lists[1][-1] = V - 1  # exercise the last vocab row
    id_lists[2][5] = 0
    cases = []
    for ids in id_lists:
        logits = ref.forward(d, ids)
        assert logits.shape == (len(ids), V) and logits.dtype == torch.float32
        assert torch.isfinite(logits).all()
        cases.append((ids, logits))

    # causality: logits of the first 20 tokens of the 40-token case must not depend on later tokens
    long_ids = id_lists[3]
    pre = ref.forward(d, long_ids[:20])
    assert torch.allclose(pre, cases[3][1][:20], atol=1e-5), (pre - cases[3][1][:20]).abs().max()

    # independent naive float64 implementation
    worst = 0.0
    for ids, logits in cases:
        naive = naive_forward(cfg, W, ids)
        worst = max(worst, float(np.abs(naive - logits.double().numpy()).max()))
    assert worst < 2e-5, worst

    # sensitivity: dropping rope_scaling (or the tie / the biases) must move the logits well beyond 1e-4
    long_logits = cases[3][1]
    if cfg.get("rope_scaling"):
        unscaled = ref.forward_weights(dict(cfg, rope_scaling=None), W, long_ids)
        sens = float((unscaled - long_logits).abs().max())
        assert sens > 1e-2, sens
    else:
        sens = None
    if 1 < cfg["num_key_value_heads"] < cfg["num_attention_heads"]:
        orig = ref.repeat_kv
        ref.repeat_kv = lambda x, n: x.repeat(n, 1, 1)  # wrong GQA mapping (tile, h % KV)
        try:
            wrong = ref.forward_weights(cfg, W, long_ids)
        finally:
            ref.repeat_kv = orig
        assert (wrong - long_logits).abs().max() > 1e-2
    if cfg["model_type"] == "qwen2":
        W_nobias = {k: v for k, v in W.items() if not k.endswith(".bias")}
        nobias = ref.forward_weights(dict(cfg, model_type="llama"), W_nobias, long_ids)
        assert (nobias - long_logits).abs().max() > 1e-2

    write_expected(d, [(ids, lg) for ids, lg in cases])
    # expected.json round trip (9 significant digits reproduce float32 exactly)
    with open(os.path.join(d, "expected.json")) as f:
        exp = json.load(f)
    for (ids, lg), c in zip(cases, exp["cases"]):
        assert c["ids"] == ids
        assert torch.equal(torch.tensor(c["logits"], dtype=torch.float32), lg)

    allv = torch.cat([lg for _, lg in cases])
    files = sorted(os.listdir(d))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
    print(f"{name}: {files}")
    print(f"   total {size} bytes; logits std {allv.std():.3f} absmax {allv.abs().max():.3f}; "
          f"naive f64 max|diff| {worst:.2e}; no-rope-scaling max|diff| {sens}")
    return size


def main():
    self_checks()
    total = 0
    total += build("tiny-llama", LLAMA_CFG,
                   make_weights(LLAMA_CFG, seed=1, embed_std=1.0, head_std=0.15, qk_std=0.25,
                                lin_std=0.15, out_std=0.1),
                   torch.float32, n_shards=2, seed=1)
    total += build("tiny-qwen2", QWEN2_CFG,
                   make_weights(QWEN2_CFG, seed=2, embed_std=0.2, head_std=None, qk_std=0.25,
                                lin_std=0.15, out_std=0.03, bias_std=0.5),
                   torch.bfloat16, n_shards=1, seed=2)
    total += build("tiny-mistral", MISTRAL_CFG,
                   make_weights(MISTRAL_CFG, seed=3, embed_std=1.0, head_std=0.15, qk_std=0.25,
                                lin_std=0.15, out_std=0.1),
                   torch.float16, n_shards=1, seed=3)
    print(f"all fixtures: {total} bytes")
    assert total < 1_250_000, total


if __name__ == "__main__":
    main()
