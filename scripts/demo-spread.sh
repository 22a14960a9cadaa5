#!/usr/bin/env bash
# The demo's table with its seed-to-seed spread: for each training seed, 10 ingredients trained
# as the demo trains them (dropout 0.8) on DATASET, then every strategy as the demo's recipe says
# (soup seed = training seed). Prints, per row, the mean test accuracy over the seeds and its
# range, and the souping seconds. The table of the main job (docs/performance.md) comes from the defaults.
#
# usage: scripts/demo-spread.sh [DATASET] [SEEDS] [ARCH]     (default: csbm, "0 1 2", gcn)
#        TRAIN_FLAGS="--epochs 50" SOUP_FLAGS="--lr 20" scripts/demo-spread.sh ...
#        (TRAIN_FLAGS replace the demo's --dropout 0.8; SOUP_FLAGS override the recipe)
# results: target/bench/demo-spread/<dataset>-<arch>[-<flags>]/table.md
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-csbm}
SEEDS=${2:-0 1 2}
ARCH=${3:-gcn}
B=${GNN_SOUP_BIN:-target/release/gnn-soup}
TRAIN_FLAGS=${TRAIN_FLAGS---dropout 0.8}
SOUP_FLAGS=${SOUP_FLAGS:-}
OUT="target/bench/demo-spread/$(echo "$DATASET-$ARCH${TRAIN_FLAGS:+-$TRAIN_FLAGS}" | tr ':,= ' '_.__')"
SOUP_TAG=$(echo "$SOUP_FLAGS" | tr ' =' '__')
[ -n "${GNN_SOUP_BIN:-}" ] || cargo build --release --quiet
mkdir -p "$OUT"
for s in $SEEDS; do
  if [ ! -f "$OUT/seed$s/manifest.json" ]; then
    $B train --dataset "$DATASET" --arch "$ARCH" $TRAIN_FLAGS --seed "$s" --ingredients 10 --device cpu --out "$OUT/seed$s" --overwrite --json > "$OUT/train-$s.json"
  fi
  $B soup --recipe assets/recipes/demo.toml --dataset "$DATASET" --ingredients "$OUT/seed$s" --strategy all $SOUP_FLAGS --seed "$s" --device cpu --out "$OUT/run$s$SOUP_TAG" --overwrite --json > "$OUT/soup-$s$SOUP_TAG.json" 2>/dev/null
done
python3 - "$OUT" "$DATASET $ARCH $TRAIN_FLAGS $SOUP_FLAGS" "$SOUP_TAG" $SEEDS <<'PY'
import json, statistics, sys
out, dataset, tag, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = [json.load(open(f"{out}/soup-{s}{tag}.json")) for s in seeds]
rows = {}
for reports in runs:
    first = reports[0]
    ing = [i["test_acc"] for i in first["ingredients"]]
    best = max(first["ingredients"], key=lambda i: i["val_acc"])
    rows.setdefault("ingredients (mean)", []).append((statistics.mean(ing), None))
    rows.setdefault("ingredients (min-max)", []).append((min(ing), max(ing)))
    rows.setdefault("best ingredient (val)", []).append((best["test_acc"], None))
    for r in reports:
        rows.setdefault(r["strategy"], []).append((r["test_acc"], r["seconds"]))
lines = [f"| {dataset}, {len(seeds)} seeds | test, mean | range over seeds | seconds (median) |", "|---|---|---|---|"]
for name, vals in rows.items():
    if name == "ingredients (min-max)":
        lo = statistics.mean(v[0] for v in vals); hi = statistics.mean(v[1] for v in vals)
        lines.append(f"| ingredients (lowest / highest, mean over seeds) | {100*lo:.2f}% / {100*hi:.2f}% | | |")
        continue
    accs = [v[0] for v in vals]
    secs = [v[1] for v in vals if v[1] is not None]
    lines.append(f"| {name} | {100*statistics.mean(accs):.2f}% | {100*min(accs):.2f}-{100*max(accs):.2f} | {statistics.median(secs):.2f} |" if secs else f"| {name} | {100*statistics.mean(accs):.2f}% | {100*min(accs):.2f}-{100*max(accs):.2f} | |")
total = [sum(r["seconds"] for r in reports) for reports in runs]
lines.append(f"\nsouping, all strategies: {statistics.median(total):.1f} s (median over seeds)")
open(f"{out}/table{tag}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
