#!/usr/bin/env bash
# Products scale on this machine: csbm-products (synthetic, 2,449,029 nodes, ~124 M directed
# edges, 100 features, 47 classes) with 10 GraphSAGE 3x256 ingredients (one training epoch each:
# the figures are about souping cost, not accuracy), CPU.
# - PLS with the issue's K 32 / R 8 runs to the end: s/epoch, total, peak RSS;
# - LS is refused before it starts, with what it needs and what PLS would need (the memory check);
# - GIS is projected from one timed full-graph inference pass (GIS is N + (N-1)(G-2) of them).
#
# usage: scripts/bench-products.sh [PLS_EPOCHS]      results: target/bench/products.md
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-10}
OUT=target/bench
B=target/release/gnn-soup
cargo build --release --quiet --bin gnn-soup
mkdir -p "$OUT"
export GNN_SOUP_DATA_DIR=$OUT/data
ING=$OUT/products-sage
peak() { /usr/bin/time -f "%e %M" -o "$OUT/$1.time" "${@:2}"; }

peak products-data $B data info --dataset csbm-products --json > "$OUT/products-data.json"
if [ ! -f "$ING/manifest.json" ]; then
  peak products-train $B train --dataset csbm-products --arch sage --layers 3 --hidden 256 --dropout 0.5 --input-dropout-off 2 \
    --epochs 1 --ingredients 10 --out "$ING" --overwrite --device cpu --json > "$OUT/products-train.json"
fi
peak products-pls $B soup --ingredients "$ING" --strategy pls --parts 32 --sample 8 --epochs "$EPOCHS" --lr 1 --t0 4 \
  --device cpu --out "$OUT/products-pls" --overwrite --json > "$OUT/products-pls.json"
set +e
$B soup --ingredients "$ING" --strategy ls --epochs 1 --device cpu --out "$OUT/products-ls" --overwrite --json > /dev/null 2> "$OUT/products-ls.err"
echo "ls exit code $?" >> "$OUT/products-ls.err"
set -e
peak products-eval $B eval "$ING/ingredient-00.safetensors" --json > "$OUT/products-eval.json"

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
t = lambda n: [float(v) for v in open(f"{out}/{n}.time").read().split()]
data_s, data_kib = t("products-data")
pls = json.load(open(f"{out}/products-pls.json"))
h = pls["history"]
per = statistics.median([b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])])
pls_s, pls_kib = t("products-pls")
eval_s = json.load(open(f"{out}/products-eval.json"))["seconds"]
info = json.load(open(f"{out}/products-data.json"))
ls_err = open(f"{out}/products-ls.err").read().strip().splitlines()
ls_line = next((l for l in ls_err if "needs about" in l), ls_err[-1] if ls_err else "?")
n, g = 10, 20
passes = n + (n - 1) * (g - 2)
lines = [
    f"csbm-products (synthetic): {info['nodes']:,} nodes, {info['edges']:,} directed edges, {info['features']} features; generated and checked in {data_s:.0f} s",
    "",
    "| | figure |",
    "|---|---|",
    f"| PLS (K 32, R 8) median s/epoch | {per:.1f} |",
    f"| PLS total for {len(h)} epochs (fit only) | {pls['seconds']:.0f} s |",
    f"| PLS whole command (loading, METIS, evaluations) | {pls_s:.0f} s |",
    f"| PLS peak RSS (whole process) | {pls_kib / 2**20:.1f} GiB |",
    f"| PLS memory added by souping | {(pls['peak_rss_bytes'] - pls['rss_start_bytes']) / 2**30:.1f} GiB |",
    f"| one full-graph inference pass (`eval`; building the sparse operator included) | {eval_s:.0f} s |",
    f"| GIS projected: {passes} passes | at most {passes * eval_s / 3600:.1f} h |",
    "",
    f"LS: `{ls_line.strip()}`",
]
open(f"{out}/products.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
