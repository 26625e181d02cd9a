"""Writes the LoRA-Mixer fixtures tests/LoraMixer.Tests/Fixtures/mixers/<name>/ over the committed
tiny-llama base (method.md section 7 layout) and their expected.json, with fixed seeds.

    tiny-llama-mixer/             router_scope "block":      router.safetensors model.layers.{L}.router.weight [E, hidden]
    tiny-llama-mixer-projection/  router_scope "projection": model.layers.{L}.self_attn.{q,k,v,o}_proj.router.weight [E, in]
    tiny-llama-mixer-causal-mean/ router_input "causal_mean", router_input_norm "standardize": model.layers.{L}.router.weight
                                  [E, 2*hidden] with .input_mean and .input_std [2*hidden]
    tiny-llama-mixer-sequence/    router_input "causal_mean", routing_granularity "sequence": one decision per sequence,
                                  taken at its last position
    */experts/{alpha,beta,gamma}/ plain PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors)

Self-checks (assert while generating): hard routing to expert e equals an independent single-LoRA forward
(W + s B A merged into the base weights, then the plain base forward) to 1e-5 (in float64) for every expert; the
experts move the logits well beyond that tolerance; the routes are varied across tokens and layers;
expected.json parses back to the exact float32 values; the fixtures stay small.

Run:  /usr/bin/python3 tests/reference/make_mixer_fixtures.py
"""
import json
import math
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_llama  # noqa: E402
import reference_mixer  # noqa: E402
import safetensors_io  # noqa: E402

torch.set_num_threads(1)

FIXTURES = os.path.join(HERE, "..", "LoraMixer.Tests", "Fixtures")
BASE = os.path.join(FIXTURES, "models", "tiny-llama")
OUT = os.path.join(FIXTURES, "mixers")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
ROUTER_STD = 0.3        # router logits std ~ 0.3 * sqrt(64) * |n|_rms ~ 2.5: decisive, yet second choices matter
DELTA_TO_BASE = 0.8     # each expert's LoRA update is ~0.8x the base projection's output magnitude

# name, r, lora_alpha, target_modules, extra config fields, modules it has
EXPERTS = [
    ("alpha", 4, 8, ["q_proj", "k_proj", "v_proj", "o_proj"], {}, TARGETS),
    ("beta", 2, 4, ["q_proj", "v_proj"], {"use_rslora": True}, ["q_proj", "v_proj"]),
    ("gamma", 8, 16, r".*\.(q_proj|k_proj|v_proj|o_proj)", {"rank_pattern": {"layers.1.self_attn.o_proj": 4}}, TARGETS),
]


def adapter_config(r, alpha, targets, extra):
    """The adapter_config.json PEFT's save_pretrained writes for a LoRA (keys sorted, indent 2)."""
    cfg = {
        "alpha_pattern": {}, "base_model_name_or_path": "tiny-llama", "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "layers_pattern": None, "layers_to_transform": None,
        "lora_alpha": alpha, "lora_dropout": 0.0, "modules_to_save": None, "peft_type": "LORA", "r": r,
        "rank_pattern": {}, "target_modules": targets, "task_type": "CAUSAL_LM", "use_rslora": False,
    }
    cfg.update(extra)
    return cfg


def make_expert(gen, cfg, W, r, alpha, targets, extra, modules):
    acfg = adapter_config(r, alpha, targets, extra)
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for proj in modules:
            module = f"model.layers.{layer}.self_attn.{proj}"
            assert reference_mixer.peft_is_target(acfg, module), module
            w = W[module + ".weight"]
            out_f, in_f = w.shape
            scaling, rank = reference_mixer.peft_scaling(acfg, module)
            # A x ~ unit per rank component for unit-RMS x; B sized so s * B A x ~ DELTA_TO_BASE * |W x|.
            base_std = w.pow(2).sum(1).sqrt().mean().item()
            a = torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f)
            b = torch.randn(out_f, rank, generator=gen) * (DELTA_TO_BASE * base_std / (scaling * math.sqrt(rank)))
            tensors[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
            tensors[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
    return acfg, tensors


def write_adapter(d, acfg, tensors):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        f.write(json.dumps(acfg, indent=2, sort_keys=True) + "\n")
    safetensors_io.save_file(tensors, os.path.join(d, "adapter_model.safetensors"), metadata={"format": "pt"})


def mixer_config(scope, base_rel, extra=None):
    return {**(extra or {}),
        "format": "loramixer.mixer/1", "base_model": base_rel, "architecture": "LlamaForCausalLM",
        "hidden_size": 64, "num_hidden_layers": 2, "targets": TARGETS, "router_scope": scope, "top_k": 2,
        "renormalize": True, "router_temperature": 1.0,
        "experts": [{"name": n, "path": f"experts/{n}"} for n, *_ in EXPERTS], "training": {},
    }


def fmt(x):
    return "%.9g" % x  # 9 significant digits: parses back to the exact float32


def nested(t):
    if t.dim() == 1:
        return "[" + ", ".join(fmt(v) for v in t.tolist()) + "]"
    return "[" + ", ".join(nested(s) for s in t) + "]"


def write_expected(d, cases):
    parts = []
    for c in cases:
        head = {k: v for k, v in c.items() if k not in ("logits", "gates")}
        fields = [json.dumps(k) + ": " + json.dumps(v) for k, v in head.items()]
        fields.append('"gates": ' + nested(c["gates"]))
        fields.append('"logits": [\n' + ",\n".join("        " + nested(row) for row in c["logits"]) + "\n      ]")
        parts.append("    {\n      " + ",\n      ".join(fields) + "\n    }")
    with open(os.path.join(d, "expected.json"), "w") as f:
        f.write('{\n  "cases": [\n' + ",\n".join(parts) + "\n  ]\n}\n")


def f64(tensors):
    return {k: v.to(torch.float64) for k, v in tensors.items()}


def merged_single_lora_logits(cfg, W, adapter_dir, ids):
    """Independent check path: merge W + s B A for one adapter (read back from disk) and run the base forward."""
    _, modules = reference_mixer.load_adapter(adapter_dir)
    merged = dict(W)
    for module, (a, b, s) in modules.items():
        merged[module + ".weight"] = W[module + ".weight"] + s * (b.double() @ a.double())
    with torch.no_grad():
        return reference_llama.forward_weights(cfg, merged, ids)


def build(name, scope, seed, modes, cfg, W, base_logits, id_cases, router_design=None):
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    mcfg = mixer_config(scope, "../../models/tiny-llama", router_design)
    with open(os.path.join(d, "mixer_config.json"), "w") as f:
        f.write(json.dumps(mcfg, indent=2) + "\n")

    gen = torch.Generator().manual_seed(seed)
    E = len(EXPERTS)
    routers = {}
    for layer in range(cfg["num_hidden_layers"]):
        for proj in (TARGETS if scope == "projection" else [None]):
            in_f = cfg["hidden_size"] if proj is None else W[f"model.layers.{layer}.self_attn.{proj}.weight"].shape[1]
            key = reference_mixer.router_key(mcfg, layer, proj)
            if (router_design or {}).get("router_input") == "causal_mean":
                in_f *= 2
            routers[key] = torch.randn(E, in_f, generator=gen) * ROUTER_STD
            if (router_design or {}).get("router_input_norm") == "standardize":
                prefix = key[: -len(".weight")]
                routers[prefix + ".input_mean"] = torch.randn(in_f, generator=gen) * 0.5
                routers[prefix + ".input_std"] = torch.rand(in_f, generator=gen) + 0.5
    safetensors_io.save_file(routers, os.path.join(d, "router.safetensors"), metadata={"format": "pt"})

    egen = torch.Generator().manual_seed(1234)  # the same experts in every mixer fixture
    for ename, r, alpha, targets, extra, modules in EXPERTS:
        acfg, tensors = make_expert(egen, cfg, W, r, alpha, targets, extra, modules)
        write_adapter(os.path.join(d, "experts", ename), acfg, tensors)

    mcfg2, base_dir, experts, routers2 = reference_mixer.load_mixer(d)
    assert os.path.samefile(base_dir, BASE)
    cases = []
    for ids in id_cases:
        for mode in modes:
            m = dict(mode)
            logits, g = reference_mixer.forward_loaded(cfg, W, mcfg2, experts, routers2, ids, m["mode"],
                                                       m.get("top_k"), m.get("renormalize", True), m.get("expert"))
            cases.append({"ids": ids, **m, "gates": g, "logits": logits})

    # Self-check: one-hot routing to expert e == the merged single-LoRA forward, for every expert. Done in
    # float64 (the stored fixture values are float32) so that it tests the semantics, not float32 rounding
    # of (W + sBA)x versus Wx + sB(Ax), which alone reaches ~1e-5 on these logits.
    long_ids = id_cases[-1]
    W64 = f64(W)
    experts64 = [{m: (a.double(), b.double(), s) for m, (a, b, s) in ex.items()} for ex in experts]
    for e, (ename, *_) in enumerate(EXPERTS):
        mixed, _ = reference_mixer.forward_loaded(cfg, W64, mcfg2, experts64, f64(routers2), long_ids, "hard", expert=e)
        single = merged_single_lora_logits(cfg, W64, os.path.join(d, "experts", ename), long_ids)
        diff = (mixed - single).abs().max().item()
        moved = (single - base_logits[tuple(long_ids)]).abs().max().item()
        print(f"   hard->{ename}: max|mixer - merged LoRA| {diff:.2e}; max|LoRA - base| {moved:.3f}")
        assert diff <= 1e-5, (name, ename, diff)
        assert moved > 0.5, (name, ename, moved)

    # The modes must be distinguishable, and routes varied (not one expert everywhere).
    by_mode = {json.dumps({k: v for k, v in c.items() if k not in ("ids", "gates", "logits")}): c
               for c in cases if c["ids"] == long_ids}
    keys = list(by_mode)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            delta = (by_mode[keys[i]]["logits"] - by_mode[keys[j]]["logits"]).abs().max().item()
            assert delta > 1e-2, (name, keys[i], keys[j], delta)
    soft = next(c for c in cases if c["ids"] == long_ids and c["mode"] == "soft")["gates"]
    top1 = soft.argmax(-1)
    print(f"   soft gates: top-1 share per expert {[round((top1 == e).float().mean().item(), 2) for e in range(E)]}, "
          f"mean max p {soft.max(-1).values.mean().item():.2f}, mean 2nd p {soft.topk(2, -1).values[..., 1].mean().item():.2f}")
    # Sequence routing decides once per layer: two layers can show at most two winners.
    need = 2 if (router_design or {}).get("routing_granularity") == "sequence" else E
    assert len(set(top1.flatten().tolist())) >= need, "routing should vary"

    write_expected(d, cases)
    with open(os.path.join(d, "expected.json")) as f:
        back = json.load(f)["cases"]
    for c, b in zip(cases, back):
        assert torch.equal(torch.tensor(b["logits"], dtype=torch.float32), c["logits"])
        assert torch.equal(torch.tensor(b["gates"], dtype=torch.float32), c["gates"])
    size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(d) for f in files)
    print(f"{name}: {len(cases)} cases, {size} bytes")
    return size


def main():
    cfg = reference_llama.load_config(BASE)
    W = reference_llama.load_weights(BASE)
    reference_llama.check_keys(cfg, W)
    assert cfg["hidden_size"] == 64 and cfg["num_hidden_layers"] == 2

    gen = torch.Generator().manual_seed(7)
    id_cases = [[1], [1] + torch.randint(0, cfg["vocab_size"], (11,), generator=gen).tolist()]
    with torch.no_grad():
        base_logits = {tuple(ids): reference_llama.forward_weights(cfg, W, ids) for ids in id_cases}
        plain = reference_llama.forward(BASE, id_cases[-1])
    assert torch.equal(plain, base_logits[tuple(id_cases[-1])])  # no hook == the committed base reference

    block_modes = [
        {"mode": "soft"},
        {"mode": "topk", "top_k": 1, "renormalize": True},
        {"mode": "topk", "top_k": 2, "renormalize": True},
        {"mode": "topk", "top_k": 2, "renormalize": False},
        {"mode": "hard", "expert": 1},
    ]
    projection_modes = [{"mode": "soft"}, {"mode": "topk", "top_k": 2, "renormalize": True}]
    total = build("tiny-llama-mixer", "block", 11, block_modes, cfg, W, base_logits, id_cases)
    total += build("tiny-llama-mixer-projection", "projection", 12, projection_modes, cfg, W, base_logits, id_cases)
    total += build("tiny-llama-mixer-causal-mean", "block", 13, projection_modes, cfg, W, base_logits, id_cases,
                   {"router_input": "causal_mean", "router_input_norm": "standardize"})
    total += build("tiny-llama-mixer-sequence", "block", 15, projection_modes, cfg, W, base_logits, id_cases,
                   {"router_input": "causal_mean", "routing_granularity": "sequence"})
    print(f"all mixer fixtures: {total} bytes")
    assert total < 500_000, total


if __name__ == "__main__":
    main()
