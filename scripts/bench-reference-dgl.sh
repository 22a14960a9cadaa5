#!/usr/bin/env bash
# gnn-soup against the paper's reference code itself: its soups.py (LS, PLS, GIS) with DGL 2.1 and
# torch 2.2.1 in the reference environment (scripts/lib/reference-env.sh), driven by
# benches/reference_dgl.py from a checkout of the reference repository (REFERENCE_DIR). Same graph
# (csbm-arxiv, exported as npz), same 10 ingredients (trained here in the reference's layout: DGL's
# GraphConv without added self-loops, or SAGEConv mean; exported with `gnn-soup export --layout
# dgl` for the reference), same settings, 2 threads each, sides alternating, dropout on while
# fitting, mixing weights initialised to ones, partitions precomputed on both sides, no validation
# pass during the fit on either side (the reference makes none; gnn-soup's --fit-validation off),
# the souping call alone timed on both sides (the reference's soups.py call; gnn-soup's
# fit_seconds, which leaves out the final evaluation of the soup, as the reference's timing does).
#
# usage: REFERENCE_DIR=<checkout of https://github.com/Zubes01/Enhanced-Soups-for-Graph-Neural-Networks> \
#        scripts/bench-reference-dgl.sh [ARCH] [EPOCHS] [REPEATS]      (gcn 20 3; ARCH gcn or sage)
# results: target/bench/reference-dgl/ARCH.md; BENCH_SKIP_GIS=1 leaves GIS out (the long one).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-gcn}
EPOCHS=${2:-20}
REPEATS=${3:-3}
THREADS=2
: "${REFERENCE_DIR:?set REFERENCE_DIR to a checkout of https://github.com/Zubes01/Enhanced-Soups-for-Graph-Neural-Networks}"
[ -f "$REFERENCE_DIR/soups.py" ] || { echo "$REFERENCE_DIR has no soups.py: not a checkout of the reference repository" >&2; exit 2; }
OUT=target/bench/reference-dgl
B=target/release/gnn-soup
mkdir -p "$OUT"
source scripts/lib/reference-env.sh
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gnn-soup
export GNN_SOUP_DATA_DIR=$OUT/data OMP_NUM_THREADS=$THREADS
case $ARCH in
  # The reference's GCN drops hidden activations only; its GraphSAGE every layer's input but the last.
  gcn) TRAIN_ARGS=(--arch gcn --input-dropout-off 0 --self-loops false); LR=11 ;;
  sage) TRAIN_ARGS=(--arch sage --input-dropout-off 2); LR=15 ;;
  *) echo "ARCH must be gcn or sage" >&2; exit 2 ;;
esac
SETTINGS=(--epochs "$EPOCHS" --lr $LR --t0 4 --init ones)
ING=$OUT/ingredients-$ARCH
if [ ! -f "$ING/manifest.json" ]; then
  $B train --dataset csbm-arxiv --layers 3 --hidden 256 --dropout 0.5 "${TRAIN_ARGS[@]}" --epochs 3 \
    --ingredients 10 --out "$ING" --overwrite --device cpu --json >"$OUT/train-$ARCH.json"
  for f in "$ING"/ingredient-*.safetensors; do
    $B export "$f" --layout dgl --out "${f%.safetensors}.pt" --overwrite
  done
fi
[ -f "$OUT/csbm-arxiv.npz" ] || $B data export --dataset csbm-arxiv --out "$OUT/csbm-arxiv.npz"
REF=("$REFERENCE_PYTHON" benches/reference_dgl.py "$REFERENCE_DIR" "$OUT/csbm-arxiv.npz" "$ING" "$ARCH")
# Partitions made once on both sides, outside the timings: DGL's files, gnn-soup's cache.
[ -f "$OUT/parts-$ARCH/graph.json" ] || "${REF[@]}" partition-only --parts 32 --partition-dir "$OUT/parts-$ARCH" >/dev/null
$B soup --ingredients "$ING" --strategy pls --epochs 1 --device cpu --out "$OUT/warm-$ARCH" --overwrite >/dev/null 2>&1

ours() { # NAME STRATEGY ARGS...
  local name=$1 s=$2; shift 2
  $B soup --ingredients "$ING" --strategy "$s" --device cpu --out "$OUT/soup-$ARCH-$name" --overwrite \
    --dropout on --fit-validation off --json "$@" >"$OUT/$ARCH-ours-$name.json" 2>/dev/null
}
theirs() { # NAME STRATEGY ARGS...
  local name=$1 s=$2; shift 2
  local log=$OUT/$ARCH-ref-$name.log
  if ! "${REF[@]}" "$s" --threads $THREADS "$@" 2>"$log" | grep '^{' >"$OUT/$ARCH-ref-$name.json"; then
    echo "the reference's $s failed ($log):" >&2; tail -5 "$log" >&2; exit 1
  fi
}
for i in $(seq "$REPEATS"); do
  ours "ls-$i" ls "${SETTINGS[@]}"
  theirs "ls-$i" ls "${SETTINGS[@]}"
  ours "pls-$i" pls "${SETTINGS[@]}" --parts 32 --sample 8
  theirs "pls-$i" pls "${SETTINGS[@]}" --parts 32 --sample 8 --partition-dir "$OUT/parts-$ARCH"
done
if [ -z "${BENCH_SKIP_GIS:-}" ]; then
  ours gis gis --granularity 20
  theirs gis gis --granularity 20
fi
python3 - "$OUT" "$ARCH" "$REPEATS" "$EPOCHS" <<'PY'
import json, os, statistics, sys
out, arch, repeats, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
load = lambda n: json.load(open(f"{out}/{arch}-{n}.json"))
med = statistics.median
added = lambda r: (r["peak_rss_bytes"] - r["rss_start_bytes"]) / 2**20
# The souping call alone on both sides: the reference's times its soups.py call, gnn-soup's report
# gives the strategy's own time beside the whole (which adds the final evaluation of the soup).
fit = lambda r: r["fit_seconds"]
rows, mem = [], {}
for s, label in [("ls", f"LS, {epochs} epochs"), ("pls", f"PLS, {epochs} epochs (K 32, R 8)")]:
    o = [load(f"ours-{s}-{i}") for i in range(1, repeats + 1)]
    t = [load(f"ref-{s}-{i}") for i in range(1, repeats + 1)]
    ot, tt = med(fit(r) for r in o), med(r["seconds"] for r in t)
    whole = med(r["seconds"] for r in o)
    rows.append(f"| {label}, s (median of {repeats}) | {tt:.1f} | {ot:.1f} ({whole:.1f} with the final evaluation) | {ot / tt:.2f}x |")
    mem[s] = (med(added(r) for r in o), med(added(r) for r in t))
    rows.append(f"| {label}: soup's val / test % (last run) | {100 * t[-1]['val_acc']:.2f} / {100 * t[-1]['test_acc']:.2f} | {100 * o[-1]['val_acc']:.2f} / {100 * o[-1]['test_acc']:.2f} | |")
if os.path.exists(f"{out}/{arch}-ours-gis.json") and os.path.exists(f"{out}/{arch}-ref-gis.json"):
    o, t = load("ours-gis"), load("ref-gis")
    rows.append(f"| GIS (granularity 20), s (one run) | {t['seconds']:.1f} | {fit(o):.1f} | {fit(o) / t['seconds']:.2f}x |")
    mem["gis"] = (added(o), added(t))
for s, (om, tm) in mem.items():
    rows.append(f"| memory added, {s.upper()}, MiB | {tm:,.0f} | {om:,.0f} | {om / tm:.2f}x |")
lines = [f"csbm-arxiv (169,343 nodes, 2,330,464 edges, 128 features, 40 classes), 10 {arch.upper()} 3x256 "
         f"ingredients, dropout on while fitting, init ones, no validation during the fit, 2 threads each, CPU, "
         f"sides alternating; times of the souping call alone on both sides (gnn-soup's report's fit_seconds: "
         f"without loading or the final evaluation of the soup)", "",
         "| | reference code (soups.py, DGL 2.1) | gnn-soup | ratio |", "|---|---|---|---|"] + rows
open(f"{out}/{arch}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
