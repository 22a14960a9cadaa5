#!/usr/bin/env bash
# PLS's METIS partition: gnn-soup's call against DGL's as the paper's reference makes it
# (benches/metis_dgl.py), on the same graph, the two sides alternating ROUNDS times, one call per
# process each: median seconds, their ratio, and the parts' quality (share of edges cut; largest
# part's nodes, validation nodes and edges against a perfect split). DGL in the reference's
# environment (scripts/lib/reference-env.sh), with 2 threads.
#
# usage: scripts/bench-metis.sh [DATASET] [K] [ROUNDS]     (csbm-arxiv 32 3)
#        results: target/bench/metis/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-csbm-arxiv}
K=${2:-32}
ROUNDS=${3:-3}
OUT=target/bench/metis
mkdir -p "$OUT"
source scripts/lib/reference-env.sh
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin gnn-soup --example partition_timing
export GNN_SOUP_DATA_DIR=$OUT/data
target/release/gnn-soup data export --dataset "$DATASET" --out "$OUT/graph.npz" --overwrite
: >"$OUT/runs.jsonl"
for _ in $(seq "$ROUNDS"); do
  target/release/examples/partition_timing "$DATASET" "$K" 1 >>"$OUT/runs.jsonl"
  OMP_NUM_THREADS=2 "$REFERENCE_PYTHON" benches/metis_dgl.py "$OUT/graph.npz" "$K" 1 2 >>"$OUT/runs.jsonl"
done
python3 - "$OUT" "$DATASET" "$K" "$ROUNDS" <<'PY'
import json, statistics, sys
out, dataset, k, rounds = sys.argv[1:]
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl") if l.startswith("{")]  # DGL prints progress lines
side = {s: [r for r in runs if r["side"] == s] for s in ("dgl", "gnn-soup")}
med = {s: statistics.median(x for r in v for x in r["seconds"]) for s, v in side.items()}
last = {s: v[-1] for s, v in side.items()}
rows = [
    ("METIS call, s (median)", *(f"{med[s]:.2f}" for s in side), f"{med['gnn-soup'] / med['dgl']:.2f}x"),
    ("edges cut", *(f"{100 * last[s]['edge_cut']:.1f}%" for s in side), ""),
    ("largest part / even share: nodes", *(f"{last[s]['max_part_nodes']:.2f}" for s in side), ""),
    ("largest part / even share: validation nodes", *(f"{last[s]['max_part_val']:.2f}" for s in side), ""),
    ("largest part / even share: edges", *(f"{last[s]['max_part_edges']:.2f}" for s in side), ""),
]
lines = [f"{dataset}, K {k}, {rounds} rounds alternating, one call per process, 2 threads each", "",
         "| | DGL 2.1 (reference's call) | gnn-soup | ratio |", "|---|---|---|---|"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
