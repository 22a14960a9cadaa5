#!/usr/bin/env bash
# Learned souping without a learning rate to tune (issue 14's protocol): per cell (dataset x
# architecture), 10 ingredients from one init per seed; the tuned LS is the best of the grid
# lr {5, 11, 30, 80, 110} x T0 {3, 4} (init ones) by validation accuracy, reported on test;
# against it LS with `--optimizer auto`, GIS and the best ingredient. Means over the seeds.
#
# usage: scripts/lr-auto.sh                      (every cell, 5 seeds: hours on 2 CPU cores)
#        CELLS="cora:gcn citeseer:gcn" SEEDS="0 1" scripts/lr-auto.sh
# results: target/bench/lr-auto/table.md, over every cell measured so far (one JSON line per run
# in runs.jsonl; rerunning a cell replaces its lines)
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/gnn-soup
OUT=target/bench/lr-auto
DATA=${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}
SEEDS=${SEEDS:-0 1 2 3 4}
# Synthetic cells of three difficulties; dataset names may not hold ':' here, so they are aliased.
declare -A DS=([cora]=cora [citeseer]=citeseer [easy]="csbm:homophily=0.8,noise=2,train=100" [mid]="csbm:homophily=0.6,noise=3,train=100" [hard]=csbm)
CELLS=${CELLS:-"cora:gcn cora:sage cora:gat citeseer:gcn citeseer:sage citeseer:gat easy:gcn easy:sage easy:gat mid:gcn mid:sage mid:gat hard:gcn hard:sage hard:gat"}
cargo build --release --quiet
mkdir -p "$OUT"
# runs.jsonl keeps every cell measured so far; the cells measured now replace their old lines.
touch "$OUT/runs.jsonl"
python3 - "$OUT/runs.jsonl" $CELLS <<'PY'
import json, sys
path, cells = sys.argv[1], set(sys.argv[2:])
keep = [l for l in open(path) if l.strip() and json.loads(l)["cell"] not in cells]
open(path, "w").writelines(keep)
PY
record() { # cell seed name json
  python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'cell':'$1','seed':$2,'run':'$3','val':r['val_acc'],'test':r['test_acc'],'seconds':r['seconds'],'best_ingredient_test':max(r['ingredients'],key=lambda i:i['val_acc'])['test_acc']}))" >> "$OUT/runs.jsonl"
}
for cell in $CELLS; do
  name=${cell%%:*}; arch=${cell##*:}; dataset=${DS[$name]}
  for s in $SEEDS; do
    ing="$OUT/$name-$arch/seed$s"
    [ -f "$ing/manifest.json" ] || "$B" train --dataset "$dataset" --data-dir "$DATA" --arch "$arch" --seed "$s" --ingredients 10 --device cpu --out "$ing" --overwrite --json > /dev/null 2>&1
    soup() { "$B" soup --ingredients "$ing" --data-dir "$DATA" --seed "$s" --device cpu --out "$OUT/tmp" --overwrite --json "$@" 2>/dev/null; }
    for lr in 5 11 30 80 110; do for t0 in 3 4; do
      soup --strategy ls --lr $lr --t0 $t0 --init ones | record "$cell" "$s" "sgd-$lr-$t0"
    done; done
    soup --strategy ls --optimizer auto --init ones | record "$cell" "$s" auto
    soup --strategy gis | record "$cell" "$s" gis
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
from collections import defaultdict
out = sys.argv[1]
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
by = defaultdict(lambda: defaultdict(dict))
for r in runs:
    by[r["cell"]][r["seed"]][r["run"]] = r
lines = ["| cell | seeds | tuned LS (grid, by val) | auto LS | auto - tuned | GIS | best ingredient | auto time / tuned run |", "|---|---|---|---|---|---|---|---|"]
for cell, seeds in by.items():
    tuned, auto, gis, best, ratio = [], [], [], [], []
    for s, rs in seeds.items():
        grid = [v for k, v in rs.items() if k.startswith("sgd-")]
        pick = max(grid, key=lambda r: r["val"])  # first maximum in grid order
        tuned.append(pick["test"]); auto.append(rs["auto"]["test"]); gis.append(rs["gis"]["test"]); best.append(rs["auto"]["best_ingredient_test"])
        ratio.append(rs["auto"]["seconds"] / statistics.median(r["seconds"] for r in grid))
    m = lambda v: 100 * statistics.mean(v)
    lines.append(f"| {cell} | {len(seeds)} | {m(tuned):.2f}% | {m(auto):.2f}% | {m(auto) - m(tuned):+.2f} | {m(gis):.2f}% | {m(best):.2f}% | {statistics.median(ratio):.2f}x |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
