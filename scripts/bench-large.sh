#!/usr/bin/env bash
# gnn-soup against the paper's reference approach (benches/reference_large.py) side by side, in
# one run, on the arxiv-shaped synthetic graph (csbm-arxiv: 169,343 nodes, 2.3 M directed edges,
# 128 features, 40 classes) and the same 10 ingredients, both sides on the same thread count.
# Ingredients get 3 training epochs: the figures are about souping cost, not accuracy.
#
# usage: scripts/bench-large.sh [ARCH] [EPOCHS] [REPEATS]     (ARCH gcn or sage; default gcn 20 2)
# results: target/bench/large-ARCH.md (and the JSON of every run beside it)
# BENCH_SKIP_GIS=1 leaves GIS out (it is the long one: about 5 minutes for both sides);
# BENCH_REUSE=1 keeps the runs whose results are already there (to redo only the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-gcn}
EPOCHS=${2:-20}
REPEATS=${3:-2}
THREADS=${THREADS:-2}
OUT=target/bench
B=target/release/gnn-soup
PY=.venv/bin/python
cargo build --release --quiet --bin gnn-soup --example ls_epoch_profile
.venv/bin/python -c "import pymetis" 2>/dev/null || .venv/bin/pip install --quiet pymetis
mkdir -p "$OUT"
export GNN_SOUP_DATA_DIR=$OUT/data OMP_NUM_THREADS=$THREADS

# The reference's models: GCN drops hidden activations only (and its arxiv graph has self-loops,
# which gnn-soup's GCN adds); GraphSAGE drops every layer's input but the last.
case $ARCH in
  gcn) TRAIN_ARGS=(--arch gcn --input-dropout-off 0); LR=11; T0=4 ;;
  sage) TRAIN_ARGS=(--arch sage --input-dropout-off 2); LR=15; T0=4 ;;
  *) echo "ARCH must be gcn or sage" >&2; exit 2 ;;
esac
ING=$OUT/arxiv-$ARCH
if [ ! -f "$ING/manifest.json" ]; then
  $B train --dataset csbm-arxiv --layers 3 --hidden 256 --dropout 0.5 "${TRAIN_ARGS[@]}" --epochs 3 --ingredients 10 \
     --out "$ING" --overwrite --device cpu --json > "$OUT/train-$ARCH.json"
fi
[ -f "$OUT/csbm-arxiv.npz" ] || $B data export --dataset csbm-arxiv --out "$OUT/csbm-arxiv.npz"

ours() { # name strategy extra...
  local name=$1 s=$2; shift 2
  [ -n "${BENCH_REUSE:-}" ] && [ -s "$OUT/$ARCH-ours-$name.json" ] && return
  $B soup --ingredients "$ING" --strategy "$s" --device cpu --out "$OUT/soup-$ARCH-$name" --overwrite --json "$@" > "$OUT/$ARCH-ours-$name.json" 2>/dev/null
}
theirs() { # name strategy extra...
  local name=$1 s=$2; shift 2
  [ -n "${BENCH_REUSE:-}" ] && [ -s "$OUT/$ARCH-ref-$name.json" ] && return
  $PY benches/reference_large.py "$OUT/csbm-arxiv.npz" "$ING" "$s" --threads "$THREADS" "$@" > "$OUT/$ARCH-ref-$name.json" 2>/dev/null
}
# Alternate the two sides so that both see the same machine load.
for i in $(seq "$REPEATS"); do
  ours "ls-$i" ls --epochs "$EPOCHS" --lr $LR --t0 $T0
  theirs "ls-$i" ls --epochs "$EPOCHS" --lr $LR --t0 $T0
  ours "pls-$i" pls --epochs "$EPOCHS" --lr $LR --t0 $T0 --parts 32 --sample 8
  theirs "pls-$i" pls --epochs "$EPOCHS" --lr $LR --t0 $T0 --parts 32 --sample 8
done
if [ -z "${BENCH_SKIP_GIS:-}" ]; then
  ours gis gis
  theirs gis gis
fi
# The floor an LS epoch cannot beat by much: one training step of a single model.
target/release/examples/ls_epoch_profile "$ING" csbm-arxiv 5 2>/dev/null > "$OUT/$ARCH-profile.txt"

$PY - "$OUT" "$ARCH" "$REPEATS" <<'PY'
import json, os, statistics, sys
out, arch, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = lambda n: json.load(open(f"{out}/{arch}-{n}.json"))
med = statistics.median
def ours_epochs(r):
    h = r["history"]
    return [b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])]
rows, mem = [], {}
for s in ["ls", "pls"]:
    o = [load(f"ours-{s}-{i}") for i in range(1, repeats + 1)]
    t = [load(f"ref-{s}-{i}") for i in range(1, repeats + 1)]
    oe = med([med(ours_epochs(r)) for r in o])
    te = med([med(r["epoch_seconds"]) for r in t])
    om = med([(r["peak_rss_bytes"] - r["rss_start_bytes"]) / 2**20 for r in o])
    tm = med([(r["peak_rss_bytes"] - r["rss_start_bytes"]) / 2**20 for r in t])
    ot, tt = med([r["seconds"] for r in o]), med([r["seconds"] for r in t])
    mem[s] = (om, tm)
    label = "LS" if s == "ls" else "PLS (K 32, R 8)"
    rows.append(f"| {label} s/epoch (median) | {te:.2f} | {oe:.2f} | {oe / te:.2f}x |")
    rows.append(f"| {label} total for {len(o[0]['history'])} epochs, s | {tt:.1f} | {ot:.1f} | {ot / tt:.2f}x |")
if os.path.exists(f"{out}/{arch}-ours-gis.json") and os.path.exists(f"{out}/{arch}-ref-gis.json"):
    o, t = load("ours-gis"), load("ref-gis")
    rows.append(f"| GIS total (granularity 20), s | {t['seconds']:.0f} | {o['seconds']:.0f} | {o['seconds'] / t['seconds']:.2f}x |")
    mem["gis"] = ((o["peak_rss_bytes"] - o["rss_start_bytes"]) / 2**20, (t["peak_rss_bytes"] - t["rss_start_bytes"]) / 2**20)
for s, (om, tm) in mem.items():
    rows.append(f"| memory added by souping, {s.upper()}, MiB | {tm:,.0f} | {om:,.0f} | {om / tm:.2f}x |")
floor = None
for line in open(f"{out}/{arch}-profile.txt"):
    if line.startswith("single model fwd+bwd (train)"):
        floor = float(line.split()[-2]) / 1000
lines = [f"csbm-arxiv (synthetic, shaped like ogbn-arxiv), 10 {arch.upper()} ingredients 3x256, dropout on while fitting, CPU, both sides on the same threads; medians of {repeats} runs", "",
         "| | reference approach (benches/reference_large.py) | gnn-soup | ratio |", "|---|---|---|---|"] + rows
ls_epoch = med([med(ours_epochs(load(f"ours-ls-{i}"))) for i in range(1, repeats + 1)])
if floor:
    lines.append(f"\nOne training step (forward + backward) of a single {arch.upper()} 3x256 on the same graph: {floor:.2f} s; LS epoch / that = {ls_epoch / floor:.2f}")
lines.append(f"PLS memory added / LS memory added (gnn-soup): {mem['pls'][0] / mem['ls'][0]:.2f}")
open(f"{out}/large-{arch}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
