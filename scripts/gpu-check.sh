#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: set up from bare (scripts/setup.sh: the torch wheel with its
# CUDA libraries), build, run the CUDA tests (tests/cuda.rs), time LS / PLS / GIS on the
# arxiv-shaped graph on the GPU, and capture the workbench's GPU panel in tmux. One markdown
# table, with the card's name and each strategy's peak device memory as NVML sees the process
# and as libtorch's allocator counts it: target/gpu-check/summary.md. Meant to finish within
# 8 minutes set-up included.
#
# usage: scripts/gpu-check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo; echo "== $* ($(date +%T))"; }
status=0

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt" || { echo "no NVIDIA GPU (nvidia-smi failed)"; exit 1; }
CARD=$(head -1 "$OUT/card.txt")

step "set-up and build"
scripts/setup.sh || exit 1
cargo build --release --quiet --bin gnn-soup || exit 1
B=target/release/gnn-soup
$B --version

step "CUDA tests"
cargo test --release --test cuda -- --include-ignored --test-threads 1 2>&1 | tail -20
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "arxiv-shaped graph: ingredients"
export GNN_SOUP_DATA_DIR=$OUT/data
ING=$OUT/arxiv-gcn
[ -f "$ING/manifest.json" ] || $B train --dataset csbm-arxiv --layers 3 --hidden 256 --dropout 0.5 --input-dropout-off 0 \
  --epochs 20 --ingredients 10 --device cuda --out "$ING" --overwrite --json > "$OUT/train.json" || status=1

step "souping on the GPU"
for s in ls pls gis; do
  extra=()
  [ "$s" = gis ] || extra=(--epochs 50 --lr 11 --t0 4)
  $B soup --ingredients "$ING" --strategy $s "${extra[@]}" --device cuda --out "$OUT/soup-$s" --overwrite --json > "$OUT/$s.json" || status=1
done

step "the workbench's GPU panel (tmux)"
if command -v tmux >/dev/null; then
  tmux kill-session -t gpucheck 2>/dev/null
  tmux new-session -d -s gpucheck -x 140 -y 45 "$B tui --attach $OUT/soup-ls"
  sleep 4
  tmux capture-pane -p -t gpucheck > "$OUT/workbench.txt"
  tmux kill-session -t gpucheck
else
  echo "tmux missing: no capture" > "$OUT/workbench.txt"
fi

step "summary"
python3 - "$OUT" "$CARD" <<'PY'
import json, statistics, sys
out, card = sys.argv[1], sys.argv[2]
rows = []
for s in ["ls", "pls", "gis"]:
    try:
        r = json.load(open(f"{out}/{s}.json"))
    except Exception as e:
        rows.append(f"| {s} | failed: {e} | | | | |")
        continue
    h = r.get("history", [])
    per = statistics.median([b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])]) if len(h) > 1 else None
    mib = lambda b: "-" if b is None else f"{b / 2**20:,.0f}"
    rows.append(f"| {s} | {r['seconds']:.1f} | {'-' if per is None else f'{per:.3f}'} | {mib(r.get('peak_device_bytes'))} | {mib(r.get('peak_device_allocated_bytes'))} | {100 * r['val_acc']:.2f}% |")
lines = [f"GPU: {card}; csbm-arxiv (synthetic, 169,343 nodes), 10 GCN ingredients 3x256; LS/PLS 50 epochs, GIS granularity 20", "",
         "| strategy | total s | median s/epoch | peak device MiB (NVML, whole process) | peak allocated MiB (libtorch) | val |", "|---|---|---|---|---|---|"] + rows
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo; cat "$OUT/workbench.txt"
exit $status
