#!/usr/bin/env bash
# Side by side, in one run, on the same 10 GCN ingredients and Cora: gnn-soup's GIS and LS
# against the reference Python approach (benches/reference_soup.py, PyG). Medians of REPEATS runs.
#
# usage: scripts/bench-reference.sh [REPEATS]      results: target/bench/reference.md
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-3}
OUT=target/bench
B=target/release/gnn-soup
DATA=${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}
cargo build --release --quiet
mkdir -p "$OUT"
if [ ! -f "$OUT/cora-gcn/manifest.json" ]; then
  $B train --dataset cora --data-dir "$DATA" --ingredients 10 --out "$OUT/cora-gcn" --overwrite --device cpu --json > "$OUT/cora-train.json"
fi
for i in $(seq "$REPEATS"); do
  for s in gis ls; do
    $B soup --ingredients "$OUT/cora-gcn" --strategy $s --epochs 100 --lr 10 --t0 4 --data-dir "$DATA" \
       --device cpu --out "$OUT/cora-$s" --overwrite --json > "$OUT/cora-$s-$i.json" 2>/dev/null
  done
done
.venv/bin/python benches/reference_soup.py "$OUT/cora-gcn" "$DATA" "$OUT/pyg" 100 10 4 "$REPEATS" > "$OUT/cora-reference.json" 2>/dev/null
python3 - "$OUT" "$REPEATS" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
ref = json.load(open(f"{out}/cora-reference.json"))
lines = ["| strategy (Cora, 10 GCN ingredients, CPU) | gnn-soup median s | reference Python median s | speed-up | gnn-soup val | reference val |", "|---|---|---|---|---|---|"]
for s in ["gis", "ls"]:
    ours = [json.load(open(f"{out}/cora-{s}-{i}.json")) for i in range(1, n + 1)]
    m_ours = statistics.median(r["seconds"] for r in ours)
    m_ref = statistics.median(ref[s])
    lines.append(f"| {s} ({'granularity 20' if s == 'gis' else '100 epochs, lr 10, T0 4'}) | {m_ours:.3f} | {m_ref:.3f} | {m_ref / m_ours:.1f}x | {100 * ours[0]['val_acc']:.2f}% | {100 * ref[s + '_val']:.2f}% |")
open(f"{out}/reference.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
