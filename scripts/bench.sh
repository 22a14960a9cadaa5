#!/usr/bin/env bash
# The engine issue's figures on the arxiv-shaped synthetic graph (csbm-arxiv: 169,343 nodes,
# ~2.3 M directed edges, 128 features, 40 classes), 10 GCN ingredients with 3 layers of 256, CPU.
# Ingredients get only a few epochs: the figures are about souping cost, not accuracy.
#
# usage: scripts/bench.sh [LS_EPOCHS]      results: target/bench/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
LS_EPOCHS=${1:-20}
OUT=target/bench
B=target/release/gnn-soup
cargo build --release --quiet
mkdir -p "$OUT"
export GNN_SOUP_DATA_DIR=$OUT/data

start=$(date +%s.%N)
$B data info --dataset csbm-arxiv --json > "$OUT/data-info.json"
gen=$(python3 -c "print($(date +%s.%N) - $start)")

if [ ! -f "$OUT/arxiv-gcn/manifest.json" ]; then
  $B train --dataset csbm-arxiv --layers 3 --hidden 256 --dropout 0.5 --epochs 3 --ingredients 10 \
     --out "$OUT/arxiv-gcn" --overwrite --device cpu --json > "$OUT/train.json"
fi

soup() { # name, extra args...
  local name=$1; shift
  $B soup --ingredients "$OUT/arxiv-gcn" --device cpu --out "$OUT/soup-$name" --overwrite --json "$@" > "$OUT/$name.json"
}
[ -n "${BENCH_SKIP_GIS:-}" ] && [ -f "$OUT/gis.json" ] || soup gis --strategy gis
soup ls --strategy ls --epochs "$LS_EPOCHS"
soup ls-nodropout --strategy ls --epochs "$LS_EPOCHS" --no-dropout
soup pls --strategy pls --epochs "$LS_EPOCHS"
soup pls-nodropout --strategy pls --epochs "$LS_EPOCHS" --no-dropout

python3 - "$OUT" "$gen" <<'PY'
import json, statistics, sys
out, gen = sys.argv[1], float(sys.argv[2])
def load(n): return json.load(open(f"{out}/{n}.json"))
rows = []
for name in ["gis", "ls", "ls-nodropout", "pls", "pls-nodropout"]:
    r = load(name)
    h = r["history"]
    per_epoch = statistics.median([b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])]) if len(h) > 1 else None
    rows.append((name, r["seconds"], per_epoch, r["peak_rss_bytes"] / 2**20, (r["peak_rss_bytes"] - r.get("rss_start_bytes", 0)) / 2**20, r["val_acc"], r["test_acc"]))
lines = [f"csbm-arxiv generated and loaded in {gen:.2f} s (synthetic, shaped like ogbn-arxiv)", "",
         "| run | total s | median s/epoch | peak RSS MiB | added by souping MiB | val | test |", "|---|---|---|---|---|---|---|"]
for n, t, e, m, a, v, te in rows:
    lines.append(f"| {n} | {t:.1f} | {'-' if e is None else f'{e:.2f}'} | {m:.0f} | {a:.0f} | {100*v:.2f}% | {100*te:.2f}% |")
d = {r[0]: r for r in rows}
for ls in ["ls", "ls-nodropout"]:
    if d["gis"][1] and d[ls][2]:
        lines.append(f"\n{ls}: 100 epochs projected {100*d[ls][2]:.0f} s vs GIS {d['gis'][1]:.0f} s: ratio GIS/LS = {d['gis'][1]/(100*d[ls][2]):.2f}")
for p, l in [("pls", "ls"), ("pls-nodropout", "ls-nodropout")]:
    lines.append(f"{p} peak RSS / {l} peak RSS = {d[p][3]/d[l][3]:.2f}; memory added by souping: {d[p][4]:.0f} / {d[l][4]:.0f} MiB = {d[p][4]/max(d[l][4], 1):.2f}")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
