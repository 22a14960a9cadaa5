#!/usr/bin/env bash
# Minibatch ingredients against full-batch ones, same settings otherwise: on Cora and CiteSeer
# (GCN 2x64, the defaults) 5 ingredients each way, minibatches of BATCH with every neighbour
# (--fanout -1,-1); on csbm-arxiv one GCN 3x256 ingredient full-batch (ARXIV_FULL_EPOCHS) and one
# in batches of 1024 with fanout 10,10,10 (ARXIV_MB_EPOCHS). Test accuracy, mean and standard
# deviation over the ingredients.
#
# usage: scripts/bench-minibatch-accuracy.sh [BATCH] [ARXIV_FULL_EPOCHS] [ARXIV_MB_EPOCHS]
#        (32 100 3; needs ../shared/datasets/planetoid or GNN_SOUP_DATA_DIR holding Cora, CiteSeer)
#        results: target/bench/minibatch-accuracy/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${1:-32}
ARXIV_FULL=${2:-100}
ARXIV_MB=${3:-3}
OUT=target/bench/minibatch-accuracy
rm -rf "$OUT" && mkdir -p "$OUT"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gnn-soup
PLANETOID=${GNN_SOUP_DATA_DIR:-../shared/datasets/planetoid}
[ -f "$PLANETOID/ind.cora.x" ] || { echo "no Cora files in $PLANETOID (set GNN_SOUP_DATA_DIR)" >&2; exit 2; }
run() { # NAME DATASET DATA_DIR ARGS...
  local name=$1 dataset=$2 dir=$3; shift 3
  local start=$SECONDS
  GNN_SOUP_DATA_DIR=$dir target/release/gnn-soup train --dataset "$dataset" --device cpu \
    --out "$OUT/$name" --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
  echo "$name $((SECONDS - start))" >>"$OUT/seconds.txt"
}
for d in cora citeseer; do
  run "$d-full" "$d" "$PLANETOID" --ingredients 5
  run "$d-minibatch" "$d" "$PLANETOID" --ingredients 5 --batch-size "$BATCH" --fanout -1,-1
done
ARXIV=(--layers 3 --hidden 256 --input-dropout-off 0 --ingredients 1)
run arxiv-full csbm-arxiv "$OUT/data" "${ARXIV[@]}" --epochs "$ARXIV_FULL"
run arxiv-minibatch csbm-arxiv "$OUT/data" "${ARXIV[@]}" --epochs "$ARXIV_MB" --batch-size 1024 --fanout 10,10,10
python3 - "$OUT" "$BATCH" "$ARXIV_FULL" "$ARXIV_MB" <<'PY'
import json, statistics, sys
out, batch, full_epochs, mb_epochs = sys.argv[1:]
secs = dict(l.split() for l in open(f"{out}/seconds.txt"))
def cell(name):
    accs = [100 * i["test_acc"] for i in json.load(open(f"{out}/{name}.json"))["ingredients"]]
    sd = f" ± {statistics.stdev(accs):.2f}" if len(accs) > 1 else ""
    return f"{statistics.mean(accs):.2f}{sd} (n={len(accs)})", secs[name]
rows = [
    ("Cora, GCN 2x64, 200 epochs", "cora", f"batch {batch}, fanout -1,-1"),
    ("CiteSeer, GCN 2x64, 200 epochs", "citeseer", f"batch {batch}, fanout -1,-1"),
    (f"csbm-arxiv, GCN 3x256 (full-batch {full_epochs} epochs, minibatch {mb_epochs})", "arxiv", "batch 1024, fanout 10,10,10"),
]
lines = ["| graph, model | full-batch test % | minibatch test % | minibatch settings | seconds (full / minibatch) |", "|---|---|---|---|---|"]
for label, key, how in rows:
    (f, fs), (m, ms) = cell(f"{key}-full"), cell(f"{key}-minibatch")
    lines.append(f"| {label} | {f} | {m} | {how} | {fs} / {ms} |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
