#!/usr/bin/env python3
"""Summarise `mixer diagnose` JSON files of the routing study as Markdown (mean ± sd over seed folders).

    python3 docs/routing-study/summarize.py STUDY_DIR [STUDY_DIR ...]

Each STUDY_DIR holds <variant>.json files from docs/routing-study/run.sh (one folder per seed).
"""
import json
import os
import statistics
import sys

ORDER = ["paper", "paper-lr", "standardize", "causal-mean", "supervised-token", "causal-mean-supervised", "default",
         "default-no-supervision", "default-token-input", "default-no-standardize", "default-straight-through",
         "default-no-rsl", "default-entropy-neg"]


def fmt(values, scale=100.0, digits=1):
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(dirs):
    runs = {}
    for d in dirs:
        for name in os.listdir(d):
            if name.endswith(".json"):
                with open(os.path.join(d, name)) as f:
                    runs.setdefault(name[:-5], []).append(json.load(f))
    variants = [v for v in ORDER if v in runs] + sorted(v for v in runs if v not in ORDER)
    print("| variant | seeds | EM learned | EM forced | learned / forced | response → own expert, mean over layers | prompt → own expert | layer-0 response consistency |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        rs = runs[v]
        learned = [r["exact_match"]["learned"] for r in rs]
        forced = [r["exact_match"]["forced"] for r in rs]
        ratio = [l / f if f else None for l, f in zip(learned, forced)]
        resp = [statistics.mean(l["response_consistency"] for l in r["layers"]) for r in rs]
        prompt = [statistics.mean(l["prompt_consistency"] for l in r["layers"]) for r in rs]
        layer0 = [r["layers"][0]["response_consistency"] for r in rs]
        print(f"| {v} | {len(rs)} | {fmt(learned)} | {fmt(forced)} | {fmt(ratio, 1.0, 2)} | {fmt(resp)} | {fmt(prompt)} | {fmt(layer0)} |")
    print()
    print("Linear-probe ceiling per layer (held-out accuracy %, chance 20%) on what each router reads: `paper` reads the")
    print("token's hidden state, `default` the token and the causal mean of its sequence:")
    print()
    for v in ("paper", "default"):
        if v not in runs:
            continue
        layers = len(runs[v][0]["layers"])
        cells = []
        for i in range(layers):
            last = [r["layers"][i]["probe_last_prompt"] for r in runs[v]]
            resp = [r["layers"][i]["probe_response"] for r in runs[v]]
            cells.append(f"layer {i}: last prompt {fmt(last)}, response {fmt(resp)}")
        print(f"- {v}: " + "; ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
