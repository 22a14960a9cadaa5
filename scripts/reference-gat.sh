#!/usr/bin/env bash
# gnn-soup against the paper's own code (not a re-implementation) on the paper's GAT: ten
# ingredients from one init on Cora (tests/python/zoo.py), souped by both with uniform, GIS and
# LS (30 epochs, lr 10, T0 4, init ones): dropout off on both sides (deterministic: the results
# must agree), and dropout on as the reference fits, over SEEDS.
#
# usage: REFERENCE_DIR=/path/to/Enhanced-Soups-for-Graph-Neural-Networks scripts/reference-gat.sh
#        (a checkout of github.com/Zubes01/Enhanced-Soups-for-Graph-Neural-Networks; nothing of
#        it is copied here). The reference's environment (PyPI dgl==2.1.0, torch==2.2.1,
#        numpy<2 and what `import dgl` and its tools.py need, about 5 GB) goes into
#        target/reference-venv once. results: target/bench/reference-gat.md
set -euo pipefail
cd "$(dirname "$0")/.."
: "${REFERENCE_DIR:?set REFERENCE_DIR to a checkout of the reference repository}"
export REFERENCE_DIR
SEEDS=${SEEDS:-0 1 2 3 4}
OUT=target/bench/reference-gat
DATA=${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}
B=target/release/gnn-soup
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
source scripts/lib/reference-env.sh
mkdir -p "$OUT"
if [ ! -f "$OUT/made/ref-gat-10/ingredient_9.pt" ]; then
  rm -rf "$OUT/made" && mkdir -p "$OUT/made"
  (cd tests/python && ../../.venv/bin/python zoo.py make "$PWD/../../$OUT/made" "$PWD/../../$DATA") > "$OUT/zoo.json"
fi
FOLDER=$OUT/made/ref-gat-10
"$B" data export --dataset cora --data-dir "$DATA" --out "$OUT/cora.npz" --overwrite 2>/dev/null
# shellcheck disable=SC2086
"$REFERENCE_PYTHON" scripts/reference_gat.py "$OUT/cora.npz" "$FOLDER" $SEEDS > "$OUT/reference.json"
rm -rf "$OUT/ours"
"$B" import $(for i in $(seq 0 9); do echo "$FOLDER/ingredient_$i.pt"; done) --init "$FOLDER/initial_model.pt" --row-normalize false \
  --dropout 0.5 --input-dropout 0.1 --attention-dropout 0.1 --edge-dropout 0.1 --dataset cora --data-dir "$DATA" --out "$OUT/ours" > /dev/null
soup() { # name soup-args...
  local name=$1; shift
  "$B" soup --ingredients "$OUT/ours" --device cpu --data-dir "$DATA" --out "$OUT/run-$name" --overwrite --json "$@" 2>/dev/null > "$OUT/$name.json"
}
soup uniform --strategy uniform
soup gis --strategy gis --granularity 20
LS=(--strategy ls --optimizer sgd --lr 10 --t0 4 --epochs 30 --init ones)
soup ls_no_dropout "${LS[@]}" --no-dropout
for s in $SEEDS; do soup "ls_dropout-$s" "${LS[@]}" --dropout on --seed "$s"; done
python3 - "$OUT" $SEEDS <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
ref = json.load(open(f"{out}/reference.json"))
ours = lambda name: json.load(open(f"{out}/{name}.json"))
pct = lambda r: f"{100 * r['val_acc']:.2f} / {100 * r['test_acc']:.2f}"
mean = lambda rs: {k: statistics.mean(r[k] for r in rs) for k in ("val_acc", "test_acc")}
rows = ["| strategy | the reference's code (DGL 2.1.0): val / test % | gnn-soup: val / test % |", "|---|---|---|"]
for name, label in [("uniform", "uniform"), ("gis", "GIS, granularity 20"), ("ls_no_dropout", "LS, dropout off")]:
    rows.append(f"| {label} | {pct(ref[name])} | {pct(ours(name))} |")
rows.append(f"| LS, dropout on (as the reference fits), mean of {len(seeds)} seeds | {pct(mean(ref['ls_dropout']))} | {pct(mean([ours(f'ls_dropout-{s}') for s in seeds]))} |")
text = "\n".join(rows) + "\n"
open(f"{out}/../reference-gat.md", "w").write(text)
print(text)
PY
