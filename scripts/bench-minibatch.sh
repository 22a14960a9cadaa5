#!/usr/bin/env bash
# Minibatch training throughput: gnn-soup's `train --batch-size --fanout` against the paper's
# reference trainer (benches/minibatch_dgl.py: its own train_full_set_minibatched and
# MinibatchGraphSAGE, DGL 2.1 + torch 2.2.1 in the reference environment), on the same graph with
# the same model (GraphSAGE, mean, LAYERS x HIDDEN), batch size and fanout, 2 threads each, sides
# alternating ROUNDS times, EPOCHS epochs a run. The first epoch of each run is left out (start-up);
# seeds per second is the training nodes over an epoch's time, medians over the rest.
#
# usage: REFERENCE_DIR=<checkout of github.com/Zubes01/Enhanced-Soups-for-Graph-Neural-Networks> \
#        scripts/bench-minibatch.sh [DATASET] [FANOUT] [BATCH] [EPOCHS] [ROUNDS]
#        (csbm-arxiv 10 1024 3 3; FANOUT is one number for every layer, as the reference takes it)
#        results: target/bench/minibatch/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-csbm-arxiv}
FANOUT=${2:-10}
BATCH=${3:-1024}
EPOCHS=${4:-3}
ROUNDS=${5:-3}
LAYERS=3
HIDDEN=256
: "${REFERENCE_DIR:?set REFERENCE_DIR to a checkout of https://github.com/Zubes01/Enhanced-Soups-for-Graph-Neural-Networks}"
[ -f "$REFERENCE_DIR/ingredient_trainer.py" ] || { echo "$REFERENCE_DIR has no ingredient_trainer.py: not a checkout of the reference repository" >&2; exit 2; }
OUT=target/bench/minibatch
mkdir -p "$OUT"
source scripts/lib/reference-env.sh
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gnn-soup
export GNN_SOUP_DATA_DIR=$OUT/data
target/release/gnn-soup data export --dataset "$DATASET" --out "$OUT/graph.npz" --overwrite
FANOUTS=$(printf "$FANOUT%.0s," $(seq $LAYERS)); FANOUTS=${FANOUTS%,}
: >"$OUT/runs.jsonl"
for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT/run"
  # The reference SAGE drops the input of every layer but the last.
  OMP_NUM_THREADS=2 target/release/gnn-soup train --dataset "$DATASET" --device cpu --arch sage \
    --layers $LAYERS --hidden $HIDDEN --input-dropout-off $((LAYERS - 1)) --batch-size "$BATCH" \
    --fanout "$FANOUTS" --epochs "$EPOCHS" --ingredients 1 --out "$OUT/run" >/dev/null 2>"$OUT/train.log"
  python3 - "$OUT/run/train-events.jsonl" >>"$OUT/runs.jsonl" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["event"] == "batch" and r["batch"] == r["batches"]:
        last[r["epoch"]] = r["seeds_per_second"]
print(json.dumps({"side": "gnn-soup", "seeds_per_second": [last[e] for e in sorted(last)]}))
PY
  OMP_NUM_THREADS=2 "$REFERENCE_PYTHON" benches/minibatch_dgl.py "$REFERENCE_DIR" "$OUT/graph.npz" \
    "$FANOUT" "$BATCH" "$EPOCHS" 2 $HIDDEN $LAYERS >>"$OUT/runs.jsonl"
done
python3 - "$OUT" "$DATASET" "$FANOUTS" "$BATCH" "$EPOCHS" "$ROUNDS" <<'PY'
import json, statistics, sys
out, dataset, fanouts, batch, epochs, rounds = sys.argv[1:]
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl") if l.startswith("{")]
rate = {"gnn-soup": [], "dgl": []}
for r in runs:
    if r["side"] == "dgl":
        rate["dgl"] += [r["seeds"] / s for s in r["epoch_seconds"][1:]]
    else:
        rate["gnn-soup"] += r["seeds_per_second"][1:]
med = {s: statistics.median(v) for s, v in rate.items()}
lines = [
    f"{dataset}, GraphSAGE (mean) 3x256, batch {batch}, fanout {fanouts}, {rounds} rounds alternating, "
    f"{epochs} epochs a run (the first left out), 2 threads each, CPU",
    "",
    "| | reference trainer (DGL 2.1) | gnn-soup | ratio |",
    "|---|---|---|---|",
    f"| training seeds per second (median) | {med['dgl']:.0f} | {med['gnn-soup']:.0f} | {med['gnn-soup'] / med['dgl']:.2f}x |",
    f"| epochs measured | {len(rate['dgl'])} | {len(rate['gnn-soup'])} | |",
]
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
