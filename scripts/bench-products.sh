#!/usr/bin/env bash
# Products scale on this machine: csbm-products (synthetic, 2,449,029 nodes, ~124 M directed
# edges, 100 features, 47 classes) with 10 GraphSAGE 3x256 ingredients, CPU. Full-batch training
# on the whole graph does not fit in 24 GiB (gnn-soup refuses it, and the message is recorded),
# so the ingredients are trained on a 200,000-node graph of the same shape (same features and
# classes) and imported for csbm-products (`gnn-soup import`, as weights trained elsewhere): the
# figures are about souping cost, which depends on the shapes, not on accuracy.
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
SMALL=$OUT/products-sage-small
peak() { /usr/bin/time -f "%e %M" -o "$OUT/$1.time" "${@:2}"; }

peak products-data $B data info --dataset csbm-products --json > "$OUT/products-data.json"
TRAIN=(--arch sage --layers 3 --hidden 256 --dropout 0.5 --input-dropout-off 2 --ingredients 10 --device cpu)
set +e
$B train --dataset csbm-products "${TRAIN[@]}" --epochs 1 --out "$OUT/products-train-refused" --overwrite > /dev/null 2> "$OUT/products-train.err"
echo "train exit code $?" >> "$OUT/products-train.err"
set -e
if [ ! -f "$SMALL/manifest.json" ]; then
  $B train --dataset "csbm:nodes=200000,classes=47,features=100,degree=50,homophily=0.8,train=0.08,val=0.016,test=0.904" \
    "${TRAIN[@]}" --epochs 3 --out "$SMALL" --overwrite --json > "$OUT/products-train.json"
fi
if [ ! -f "$ING/ingredient-09.safetensors" ]; then
  # As weights from elsewhere: plain PyG state dicts, then imported for csbm-products.
  mkdir -p "$OUT/products-sage-pyg"
  for f in "$SMALL"/init.safetensors "$SMALL"/ingredient-*.safetensors; do
    $B export "$f" --out "$OUT/products-sage-pyg/$(basename "$f")" --layout pyg --overwrite 2>/dev/null
  done
  peak products-import $B import "$OUT"/products-sage-pyg/ingredient-*.safetensors --init "$OUT/products-sage-pyg/init.safetensors" \
    --dataset csbm-products --input-dropout-off 2 --out "$ING" --overwrite --json > "$OUT/products-import.json"
fi
peak products-pls $B soup --ingredients "$ING" --strategy pls --parts 32 --sample 8 --epochs "$EPOCHS" --lr 1 --t0 4 \
  --device cpu --out "$OUT/products-pls" --overwrite --json > "$OUT/products-pls.json"
set +e
$B soup --ingredients "$ING" --strategy ls --epochs 1 --device cpu --out "$OUT/products-ls" --overwrite --json > /dev/null 2> "$OUT/products-ls.err"
echo "ls exit code $?" >> "$OUT/products-ls.err"
set -e
peak products-eval $B eval "$ING/ingredient-00.safetensors" --json > "$OUT/products-eval.json"

python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
t = lambda n: [float(v) for v in open(f"{out}/{n}.time").read().split()]
data_s, data_kib = t("products-data")
pls = json.load(open(f"{out}/products-pls.json"))
h = pls["history"]
per = statistics.median([b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])])
pls_s, _ = t("products-pls")
eval_s = json.load(open(f"{out}/products-eval.json"))["seconds"]
info = json.load(open(f"{out}/products-data.json"))
ls_err = open(f"{out}/products-ls.err").read().strip().splitlines()
ls_line = next((l for l in ls_err if "needs about" in l), ls_err[-1] if ls_err else "?")
tr_err = open(f"{out}/products-train.err").read().strip().splitlines()
tr_line = next((l for l in tr_err if "needs about" in l), tr_err[-1] if tr_err else "?")
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
    f"| PLS peak RSS during the strategy | {pls['peak_rss_bytes'] / 2**30:.1f} GiB |",
    *([f"| peak RSS before it (loading, the ingredients' full-graph evaluations) | {pls['load_peak_rss_bytes'] / 2**30:.1f} GiB |"] if pls.get("load_peak_rss_bytes") else []),
    f"| PLS memory added by souping | {(pls['peak_rss_bytes'] - pls['rss_start_bytes']) / 2**30:.1f} GiB |",
    f"| one full-graph inference pass (`eval`; building the sparse operator included) | {eval_s:.0f} s |",
    *([f"| `import` of the 10 ingredients, each evaluated on the whole graph: time, peak RSS | {t('products-import')[0]:.0f} s, {t('products-import')[1] / 2**20:.1f} GiB |"] if os.path.exists(f"{out}/products-import.time") else []),
    f"| GIS projected: {passes} passes | at most {passes * eval_s / 3600:.1f} h |",
    "",
    f"LS: `{ls_line.strip()}`",
    "",
    f"Full-batch training on csbm-products: `{tr_line.strip()}`",
]
open(f"{out}/products.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
