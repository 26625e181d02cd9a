#!/usr/bin/env bash
# The routing study of docs/routing.md: stage-2 variants over the same frozen experts, each trained with
# `mixer train --experts` and measured with `mixer diagnose` on the held-out items.
#
#   bash docs/routing-study/run.sh DEMO_DIR OUT_DIR [variant ...]
#
# DEMO_DIR is a finished `demo --out DEMO_DIR` (its data/ and seed-$SEED/experts/experts/ are used); the base
# model is the one the demo used (the cached default unless BASE is set). One JSON per variant lands in
# OUT_DIR/<variant>.json. Runs one variant after another (2 cores: never in parallel).
set -euo pipefail
demo=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
base=${BASE:-$HOME/.cache/loramixer/default-model-v1}
# LORAMIXER: the command to run (e.g. a published copy, so that rebuilding the tree does not change a running study).
if [ -n "${LORAMIXER:-}" ]; then read -r -a cli <<< "$LORAMIXER"; else cli=(dotnet run -c Release --no-build --project "$(dirname "$0")/../../src/LoraMixer.Cli" --); fi
experts=$(for d in "$demo"/seed-"${SEED:-0}"/experts/experts/*/; do n=$(basename "$d"); printf '%s=%s,' "$n" "$d"; done); experts=${experts%,}
steps=(--stage2-samples 1000 --batch-size 32 --stage2-epochs 10 --max-length 64 --checkpoint-every 0 --seed "${SEED:-0}")
declare -A variants=(
  [paper]="--preset paper"
  [paper-lr]="--preset paper --stage2-lr 1e-2"
  [standardize]="--preset paper --stage2-lr 1e-2 --router-input-norm standardize"
  [causal-mean]="--preset paper --stage2-lr 1e-2 --router-input causal_mean --router-input-norm standardize"
  [supervised-token]="--preset paper --stage2-lr 1e-2 --router-supervision 1"
  [causal-mean-supervised]="--routing-granularity token"
  [default]=""
  [default-straight-through]="--routing straight_through"
  [default-no-rsl]="--rsl-alpha 0 --rsl-lambda 0"
  [default-entropy-neg]="--entropy-sign -1"
  [default-no-supervision]="--router-supervision 0"
  [default-token-input]="--router-input token"
  [default-no-standardize]="--router-input-norm none"
)
mkdir -p "$out"
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(paper paper-lr standardize causal-mean supervised-token causal-mean-supervised default)
for v in "${names[@]}"; do
  [ -v "variants[$v]" ] || { echo "unknown variant $v; known: ${!variants[*]}" >&2; exit 2; }
  [ -f "$out/$v.json" ] && { echo "$v: done"; continue; }
  rm -rf "$out/mixers/$v" "$out/mixers/$v-training"
  # shellcheck disable=SC2086
  "${cli[@]}" mixer train --model "$base" --data "$demo/data/train.jsonl" --out "$out/mixers/$v" --experts "$experts" \
      "${steps[@]}" ${variants[$v]} > "$out/$v.train.log" 2>&1
  "${cli[@]}" mixer diagnose "$out/mixers/$v" --model "$base" --data "$demo/data/test.jsonl" --out "$out/$v.json" > "$out/$v.diagnose.log" 2>&1
  echo "$v: $(grep -E '^│ all|all ' "$out/$v.diagnose.log" | head -1)"
done
