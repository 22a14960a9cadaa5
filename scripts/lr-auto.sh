#!/usr/bin/env bash
# Learned souping without a learning rate to tune (issue 14's protocol, issue 22's grid): per cell
# (dataset x architecture) and seed, 10 ingredients from one init; the tuned LS is the best of the
# grid lr {5, 11, 30, 80, 110} x T0 {3, 4} x dropout while fitting {on, off} (init ones) by
# validation accuracy, reported on test (the column "tuned, dropout on" keeps the earlier grid);
# against it LS with `--optimizer auto` and dropout off while fitting (the default where the
# paper's table has no row), with dropout on (as the grid fits), and with a 20% validation holdout
# and early stopping; GIS and the best ingredient. PLS likewise: the
# same grid at its defaults (K 32, R 8, init normal) against PLS with `--optimizer auto`, dropout
# on and off. Means over the seeds.
#
# usage: scripts/lr-auto.sh                      (every cell, 5 seeds: hours on 2 CPU cores)
#        CELLS="cora:gcn citeseer:gcn" SEEDS="0 1" scripts/lr-auto.sh
#        PLS=0 SEEDS="2 3 4" scripts/lr-auto.sh   (LS only: PLS's runs take most of the time)
#        LS=0 TRAINED_ONLY=1 NO_BUILD=1 ...         (PLS only, beside an LS run: only cells whose
#                                                   ingredients are there, the binary already built)
# results: target/bench/lr-auto/table.md, over every run measured so far. runs.jsonl holds one
# JSON line per run; a run already there is not measured again (FRESH=1 measures the cells anew).
# Seeds are the outer loop, so an interrupted run still has every cell at its first seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench/lr-auto
B=$OUT/bin/gnn-soup # a copy, so that rebuilding during a long run does not pull the binary away
DATA=${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}
SEEDS=${SEEDS:-0 1 2 3 4}
# Synthetic cells of three difficulties; dataset names may not hold ':' here, so they are aliased.
declare -A DS=([cora]=cora [citeseer]=citeseer [easy]="csbm:homophily=0.8,noise=2,train=100" [mid]="csbm:homophily=0.6,noise=3,train=100" [hard]=csbm)
CELLS=${CELLS:-"cora:gcn cora:sage cora:gat citeseer:gcn citeseer:sage citeseer:gat easy:gcn easy:sage easy:gat mid:gcn mid:sage mid:gat hard:gcn hard:sage hard:gat"}
mkdir -p "$OUT/bin"
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --quiet
  cp target/release/gnn-soup "$B.tmp.$$" && mv "$B.tmp.$$" "$B"
fi
touch "$OUT/runs.jsonl"
if [ -n "${FRESH:-}" ]; then
  python3 - "$OUT/runs.jsonl" $CELLS <<'PY'
import json, sys
path, cells = sys.argv[1], set(sys.argv[2:])
keep = [l for l in open(path) if l.strip() and json.loads(l)["cell"] not in cells]
open(path, "w").writelines(keep)
PY
fi
record() { # cell seed name json
  python3 -c "import json,sys; r=json.load(sys.stdin); print(json.dumps({'cell':'$1','seed':$2,'run':'$3','val':r['val_acc'],'test':r['test_acc'],'seconds':r['seconds'],'best_ingredient_test':max(r['ingredients'],key=lambda i:i['val_acc'])['test_acc']}))" >> "$OUT/runs.jsonl"
}
measured() { grep -q "\"cell\": \"$1\", \"seed\": $2, \"run\": \"$3\"," "$OUT/runs.jsonl"; }
for s in $SEEDS; do
  for cell in $CELLS; do
    name=${cell%%:*}; arch=${cell##*:}; dataset=${DS[$name]}
    ing="$OUT/$name-$arch/seed$s"
    [ -n "${TRAINED_ONLY:-}" ] && [ ! -f "$ing/manifest.json" ] && continue
    [ -f "$ing/manifest.json" ] || "$B" train --dataset "$dataset" --data-dir "$DATA" --arch "$arch" --seed "$s" --ingredients 10 --device cpu --out "$ing" --overwrite --json > /dev/null 2>&1
    run() { # run-name soup-args...
      local run=$1; shift
      measured "$cell" "$s" "$run" && return 0
      "$B" soup --ingredients "$ing" --data-dir "$DATA" --seed "$s" --device cpu --out "$OUT/tmp-$$" --overwrite --json "$@" 2>/dev/null | record "$cell" "$s" "$run"
    }
    for lr in 5 11 30 80 110; do for t0 in 3 4; do for drop in on off; do
      suffix=$([ "$drop" = off ] && echo -nodrop || true) # runs with dropout on keep their names
      [ "${LS:-1}" = 0 ] || run "sgd-$lr-$t0$suffix" --strategy ls --lr $lr --t0 $t0 --init ones --dropout $drop
      [ "${PLS:-1}" = 0 ] || run "pls-sgd-$lr-$t0$suffix" --strategy pls --lr $lr --t0 $t0 --dropout $drop
    done; done; done
    if [ "${LS:-1}" != 0 ]; then
      # Dropout said every time: its default follows the optimiser.
      run auto --strategy ls --optimizer auto --init ones --dropout on
      run auto-nodrop --strategy ls --optimizer auto --init ones --no-dropout
      run auto-holdout --strategy ls --optimizer auto --init ones --no-dropout --holdout 0.2
      run gis --strategy gis
    fi
    [ "${PLS:-1}" = 0 ] || run pls-auto --strategy pls --optimizer auto --dropout on
    [ "${PLS:-1}" = 0 ] || run pls-auto-nodrop --strategy pls --optimizer auto --no-dropout
  done
done
rm -rf "$OUT/tmp-$$"
python3 - "$OUT" <<'PY'
import json, statistics, sys
from collections import defaultdict
out = sys.argv[1]
by = defaultdict(lambda: defaultdict(dict))
for line in open(f"{out}/runs.jsonl"):
    r = json.loads(line)
    by[r["cell"]][r["seed"]][r["run"]] = r
m = lambda v: 100 * statistics.mean(v)

def tuned(rs, prefix, dropout_off=True):
    grid = [v for k, v in rs.items() if k.startswith(prefix) and (dropout_off or not k.endswith("-nodrop"))]
    return max(grid, key=lambda r: r["val"]), statistics.median(r["seconds"] for r in grid)  # first maximum in grid order

# "auto" is the default where nobody tuned: Adam with dropout off while fitting (auto-nodrop).
ls = ["| cell | seeds | tuned LS (grid, by val) | tuned, dropout on | auto LS | auto - tuned | auto with dropout on - tuned | auto + holdout - tuned | GIS | best ingredient | auto time / tuned run |", "|---|---|---|---|---|---|---|---|---|---|---|"]
pls = ["| cell | seeds | tuned PLS (grid, by val) | tuned, dropout on | auto PLS | auto - tuned | auto with dropout on - tuned | auto time / tuned run |", "|---|---|---|---|---|---|---|---|"]
complete = lambda rs, prefix, others: len([k for k in rs if k.startswith(prefix)]) == 20 and others <= rs.keys()  # a seed counts once its every run is measured
for cell, seeds in by.items():
    done = [rs for rs in seeds.values() if complete(rs, "sgd-", {"auto", "auto-nodrop", "auto-holdout", "gis"})]
    if done:
        t, o, a, n, h, g, b, ratio = [], [], [], [], [], [], [], []
        for rs in done:
            pick, secs = tuned(rs, "sgd-")
            o.append(tuned(rs, "sgd-", dropout_off=False)[0]["test"])
            t.append(pick["test"]); a.append(rs["auto-nodrop"]["test"]); n.append(rs["auto"]["test"]); h.append(rs["auto-holdout"]["test"]); g.append(rs["gis"]["test"]); b.append(rs["auto"]["best_ingredient_test"])
            ratio.append(rs["auto-nodrop"]["seconds"] / secs)
        ls.append(f"| {cell} | {len(done)} | {m(t):.2f}% | {m(o):.2f}% | {m(a):.2f}% | {m(a) - m(t):+.2f} | {m(n) - m(t):+.2f} | {m(h) - m(t):+.2f} | {m(g):.2f}% | {m(b):.2f}% | {statistics.median(ratio):.2f}x |")
    done = [rs for rs in seeds.values() if complete(rs, "pls-sgd-", {"pls-auto", "pls-auto-nodrop"})]
    if done:
        t, o, a, n, ratio = [], [], [], [], []
        for rs in done:
            pick, secs = tuned(rs, "pls-sgd-")
            o.append(tuned(rs, "pls-sgd-", dropout_off=False)[0]["test"])
            t.append(pick["test"]); a.append(rs["pls-auto-nodrop"]["test"]); n.append(rs["pls-auto"]["test"]); ratio.append(rs["pls-auto-nodrop"]["seconds"] / secs)
        pls.append(f"| {cell} | {len(done)} | {m(t):.2f}% | {m(o):.2f}% | {m(a):.2f}% | {m(a) - m(t):+.2f} | {m(n) - m(t):+.2f} | {statistics.median(ratio):.2f}x |")
text = "LS\n\n" + "\n".join(ls) + "\n\nPLS\n\n" + "\n".join(pls) + "\n"
open(f"{out}/table.md", "w").write(text)
print(text)
PY
