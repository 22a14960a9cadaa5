#!/usr/bin/env bash
# `make test-slurm`: `gnn-soup slurm train` on a real Slurm (a one-node cluster on loopback,
# scripts/slurm-local.sh): a 3-task CPU array trains 3 ingredients each into one directory, a
# dependent job collects them and soups with LS; the same run trained and souped by one process
# must give the same ingredients and the same soup, bit for bit. Both sides use one CPU thread
# (OMP_NUM_THREADS=1): libtorch's float sums depend on the thread count, not on the process.
#
# usage: scripts/slurm-check.sh [WORK_DIR]       (default target/slurm-check; needs root and apt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mkdir -p "${1:-target/slurm-check}" && cd "${1:-target/slurm-check}" && pwd)
cargo build --release --quiet
B="$ROOT/target/release/gnn-soup"
PY="$ROOT/.venv/bin/python"
rm -rf "$WORK/run" "$WORK/one" "$WORK/soup-slurm" "$WORK/soup-one"
scripts/slurm-local.sh start "$WORK/cluster"
trap '"$ROOT/scripts/slurm-local.sh" stop "$WORK/cluster"' EXIT
export SLURM_CONF="$WORK/cluster/slurm.conf" OMP_NUM_THREADS=1
TRAIN=(--dataset csbm --ingredients 9 --epochs 60 --device cpu --seed 3)
cd "$WORK"
START=$(date +%s)
"$B" slurm train --array 3 --cpus-per-task 1 --time 0:20:00 --soup-out soup-slurm --soup-strategy ls --submit -- "${TRAIN[@]}" --out run
# Wait for the array and the collecting job to leave the queue.
for _ in $(seq 600); do
  [ -z "$(squeue -h -o %i)" ] && break
  sleep 1
done
SLURM_SECONDS=$(( $(date +%s) - START ))
if [ ! -f soup-slurm/report-ls.json ]; then
  echo "slurm-check: no soup came out; the jobs' logs:" >&2
  tail -n 20 run/slurm/*.log >&2 || true
  exit 1
fi
"$B" train "${TRAIN[@]}" --out one >/dev/null 2>&1
"$B" soup --ingredients one --strategy ls --device cpu --out soup-one >/dev/null 2>&1
"$PY" - "$WORK" "$SLURM_SECONDS" <<'PY'
import json, sys
from safetensors.numpy import load_file
work, seconds = sys.argv[1], sys.argv[2]
def same(a, b):
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all((x[k] == y[k]).all() for k in x)
logs = sorted(__import__("glob").glob(f"{work}/run/slurm/train-*.log"))
ingredients = [f"ingredient-{i:02d}.safetensors" for i in range(9)]
ok_ing = all(same(f"{work}/run/{f}", f"{work}/one/{f}") for f in ingredients)
ok_soup = same(f"{work}/soup-slurm/soup-ls.safetensors", f"{work}/soup-one/soup-ls.safetensors")
r1, r2 = json.load(open(f"{work}/soup-slurm/report-ls.json")), json.load(open(f"{work}/soup-one/report-ls.json"))
print(f"slurm array: {len(logs)} task logs, 9 ingredients collected and souped in {seconds} s (submission to empty queue)")
print(f"ingredients identical to the single-process run: {ok_ing}")
print(f"LS soup identical: {ok_soup}; test accuracy {100*r1['test_acc']:.2f}% (slurm) vs {100*r2['test_acc']:.2f}% (one process)")
sys.exit(0 if ok_ing and ok_soup and r1["test_acc"] == r2["test_acc"] else 1)
PY
