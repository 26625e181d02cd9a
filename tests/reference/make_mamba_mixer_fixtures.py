"""Writes the Mamba LoRA-Mixer fixtures tests/LoraMixer.Tests/Fixtures/mixers/<name>/ over the committed
tiny-mamba base (docs/method.md section 7 layout) and their expected.json, with fixed seeds.

    tiny-mamba-mixer/             router_scope "block": backbone.layers.{L}.mixer.router.weight [E, hidden]
    tiny-mamba-mixer-projection/  router_scope "projection": backbone.layers.{L}.mixer.{in,out}_proj.router.weight [E, in]
    */experts/{alpha,beta,gamma}/ plain PEFT LoRA adapters on in_proj / out_proj

Expected logits come from reference_mamba_mixer.py (written from docs/method.md and reference_mamba.py,
not from the C# code). Self-checks: hard routing to expert e equals the merged single-LoRA forward
(W + s B A merged into the base weights, then reference_mamba's plain forward) to 1e-5 in float64 for every
expert; the experts move the logits; routing modes give different logits; the routes vary; expected.json
parses back to the exact float32 values; the fixtures stay small.

Run:  /usr/bin/python3 tests/reference/make_mamba_mixer_fixtures.py
"""
import json
import math
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_mamba  # noqa: E402
import reference_mamba_mixer  # noqa: E402
import reference_mixer  # noqa: E402
from make_mixer_fixtures import adapter_config, write_adapter, write_expected  # noqa: E402

torch.set_num_threads(1)

FIXTURES = os.path.join(HERE, "..", "LoraMixer.Tests", "Fixtures")
BASE = os.path.join(FIXTURES, "models", "tiny-mamba")
OUT = os.path.join(FIXTURES, "mixers")
TARGETS = ["in_proj", "out_proj"]
ROUTER_STD = 0.3
DELTA_TO_BASE = 0.8

# name, r, lora_alpha, target_modules, extra config fields, modules it has
EXPERTS = [
    ("alpha", 4, 8, ["in_proj", "out_proj"], {}, TARGETS),
    ("beta", 2, 4, ["in_proj"], {"use_rslora": True}, ["in_proj"]),
    ("gamma", 8, 16, r".*\.(in_proj|out_proj)", {"rank_pattern": {"layers.1.mixer.out_proj": 4}}, TARGETS),
]


def make_expert(gen, cfg, W, r, alpha, targets, extra, modules):
    acfg = adapter_config(r, alpha, targets, extra)
    acfg["base_model_name_or_path"] = "tiny-mamba"
    tensors = {}
    for layer in range(cfg["num_hidden_layers"]):
        for proj in modules:
            module = f"backbone.layers.{layer}.mixer.{proj}"
            assert reference_mixer.peft_is_target(acfg, module), module
            w = W[module + ".weight"]
            out_f, in_f = w.shape
            scaling, rank = reference_mixer.peft_scaling(acfg, module)
            base_std = w.pow(2).sum(1).sqrt().mean().item()
            a = torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f)
            b = torch.randn(out_f, rank, generator=gen) * (DELTA_TO_BASE * base_std / (scaling * math.sqrt(rank)))
            tensors[f"base_model.model.{module}.lora_A.weight"] = a.contiguous()
            tensors[f"base_model.model.{module}.lora_B.weight"] = b.contiguous()
    return acfg, tensors


def mixer_config(scope):
    return {
        "format": "loramixer.mixer/1", "base_model": "../../models/tiny-mamba", "architecture": "MambaForCausalLM",
        "hidden_size": 64, "num_hidden_layers": 2, "targets": TARGETS, "router_scope": scope, "top_k": 2,
        "renormalize": True, "router_temperature": 1.0,
        "experts": [{"name": n, "path": f"experts/{n}"} for n, *_ in EXPERTS], "training": {},
    }


def f64(tensors):
    return {k: v.to(torch.float64) for k, v in tensors.items()}


def build(name, scope, seed, modes, cfg, W, base_logits, id_cases):
    import safetensors_io
    d = os.path.join(OUT, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    mcfg = mixer_config(scope)
    with open(os.path.join(d, "mixer_config.json"), "w") as f:
        f.write(json.dumps(mcfg, indent=2) + "\n")

    gen = torch.Generator().manual_seed(seed)
    E = len(EXPERTS)
    routers = {}
    for layer in range(cfg["num_hidden_layers"]):
        for proj in (TARGETS if scope == "projection" else [None]):
            in_f = cfg["hidden_size"] if proj is None else W[f"backbone.layers.{layer}.mixer.{proj}.weight"].shape[1]
            # out_proj reads y * silu(z), much smaller than the normalised n: scale its router up to stay decisive.
            std = ROUTER_STD * (1.0 if proj != "out_proj" else 8.0)
            routers[reference_mamba_mixer.router_key(mcfg, layer, proj)] = torch.randn(E, in_f, generator=gen) * std
    safetensors_io.save_file(routers, os.path.join(d, "router.safetensors"), metadata={"format": "pt"})

    egen = torch.Generator().manual_seed(4321)  # the same experts in both fixtures
    for ename, r, alpha, targets, extra, modules in EXPERTS:
        acfg, tensors = make_expert(egen, cfg, W, r, alpha, targets, extra, modules)
        write_adapter(os.path.join(d, "experts", ename), acfg, tensors)

    mcfg2, base_dir, experts, routers2 = reference_mamba_mixer.load_mixer(d)
    assert os.path.samefile(base_dir, BASE)
    cases = []
    for ids in id_cases:
        for mode in modes:
            m = dict(mode)
            logits, g = reference_mamba_mixer.forward_loaded(cfg, W, mcfg2, experts, routers2, ids, m["mode"],
                                                             m.get("top_k"), m.get("renormalize", True), m.get("expert"))
            cases.append({"ids": ids, **m, "gates": g, "logits": logits})

    # Self-check in float64: one-hot routing to expert e == the merged single-LoRA forward.
    long_ids = id_cases[-1]
    W64 = f64(W)
    experts64 = [{m: (a.double(), b.double(), s) for m, (a, b, s) in ex.items()} for ex in experts]
    for e, (ename, *_) in enumerate(EXPERTS):
        mixed, _ = reference_mamba_mixer.forward_loaded(cfg, W64, mcfg2, experts64, f64(routers2), long_ids, "hard", expert=e)
        _, modules = reference_mixer.load_adapter(os.path.join(d, "experts", ename))
        merged = dict(W64)
        for module, (a, b, s) in modules.items():
            merged[module + ".weight"] = W64[module + ".weight"] + s * (b.double() @ a.double())
        with torch.no_grad():
            single = reference_mamba.forward_weights(cfg, merged, long_ids)
        diff = (mixed - single).abs().max().item()
        moved = (single.float() - base_logits[tuple(long_ids)]).abs().max().item()
        print(f"   hard->{ename}: max|mixer - merged LoRA| {diff:.2e}; max|LoRA - base| {moved:.3f}")
        assert diff <= 1e-5, (name, ename, diff)
        assert moved > 0.2, (name, ename, moved)

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
          f"mean max p {soft.max(-1).values.mean().item():.2f}")
    assert len(set(top1.flatten().tolist())) == E, "routing should vary"

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
    cfg = reference_mamba.load_config(BASE)
    W = reference_mamba.load_weights(BASE)
    assert cfg["hidden_size"] == 64 and cfg["num_hidden_layers"] == 2

    gen = torch.Generator().manual_seed(9)
    id_cases = [[0], [0] + torch.randint(0, cfg["vocab_size"], (11,), generator=gen).tolist()]
    with torch.no_grad():
        base_logits = {tuple(ids): reference_mamba.forward_weights(cfg, W, ids) for ids in id_cases}
        plain = reference_mamba.forward(BASE, id_cases[-1])
    assert torch.equal(plain, base_logits[tuple(id_cases[-1])])

    block_modes = [
        {"mode": "soft"},
        {"mode": "topk", "top_k": 1, "renormalize": True},
        {"mode": "topk", "top_k": 2, "renormalize": True},
        {"mode": "topk", "top_k": 2, "renormalize": False},
        {"mode": "hard", "expert": 1},
    ]
    projection_modes = [{"mode": "soft"}, {"mode": "topk", "top_k": 2, "renormalize": True}]
    total = build("tiny-mamba-mixer", "block", 21, block_modes, cfg, W, base_logits, id_cases)
    total += build("tiny-mamba-mixer-projection", "projection", 22, projection_modes, cfg, W, base_logits, id_cases)
    print(f"mamba mixer fixtures: {total} bytes")
    assert total < 400_000, total


if __name__ == "__main__":
    main()
