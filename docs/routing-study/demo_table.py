#!/usr/bin/env python3
"""Mean ± sd over seeds of `demo` runs: average accuracy per method, ratio to the oracle, and for the routed
methods the share of tokens (prompt and answer) routed top-1 to their task's expert.

    python3 docs/routing-study/demo_table.py DEMO_DIR [DEMO_DIR ...]     (one `demo --out` folder per seed)
"""
import json
import os
import statistics
import sys


def ms(values, digits=1):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def alignment(routing):
    """Share of tokens whose top-1 expert is their task's, averaged over routers (task_expert rows are shares)."""
    shares = []
    for router in routing["routers"]:
        m = router["task_expert"]
        tasks = routing["tasks"]
        experts = routing["experts"]
        # rows hold the share of each task's tokens per expert; weight tasks equally
        shares.append(statistics.mean(m[t][experts.index(t)] for t in tasks if t in experts))
    return statistics.mean(shares)


def main(dirs):
    runs = []
    for d in dirs:
        with open(os.path.join(d, "results.json")) as f:
            runs.append(json.load(f))
    tasks = runs[0]["tasks"]
    methods = [m["method"] for m in runs[0]["methods"]]
    oracle = [next(m for m in r["methods"] if m["method"].startswith("single-task"))["accuracy"] for r in runs]
    print(f"{runs[0]['architecture']}, {len(runs)} seeds; accuracy % on 50 held-out items per task")
    print()
    print("| method | " + " | ".join(tasks) + " | average | / oracle | tokens to own expert % |")
    print("|---|" + "---:|" * (len(tasks) + 3))
    for name in methods:
        rows = [next(m for m in r["methods"] if m["method"] == name) for r in runs]
        avg = [statistics.mean(row["accuracy"][t] for t in tasks) for row in rows]
        ratio = [a / statistics.mean(o[t] for t in tasks) for a, o in zip(avg, oracle)]
        routed = [alignment(r["routing"][name]) * 100 for r in runs if name in r.get("routing", {})]
        cells = [ms([row["accuracy"][t] for row in rows]) for t in tasks]
        print(f"| {name} | " + " | ".join(cells) + f" | {ms(avg)} | {ms(ratio, 2)} | {ms(routed) if routed else '-'} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
