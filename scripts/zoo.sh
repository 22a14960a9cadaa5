#!/usr/bin/env bash
# The zoo of tests/zoo.rs as a table: the models users bring (tests/python/zoo.py: OGB's GCN with
# batch norm and its GraphSAGE, a PyG GAT with batch norm, the reference's GCN, GraphSAGE and GAT,
# a DGL GATConv stack; 3 ingredients each from one init on Cora), imported with the flags that say
# what their state dicts cannot, and souped with every strategy at the defaults (LS/PLS 100
# epochs, PLS on 8 parts, 4 a step).
#
# usage: scripts/zoo.sh       results: target/bench/zoo/table.md
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench/zoo
DATA=${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}
B=target/release/gnn-soup
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
rm -rf "$OUT" && mkdir -p "$OUT/made"
(cd tests/python && ../../.venv/bin/python zoo.py make "$PWD/../../$OUT/made" "$PWD/../../$DATA") > "$OUT/zoo.json"
.venv/bin/python - "$OUT" "$B" "$DATA" <<'PY'
import json, subprocess, sys
out, b, data = sys.argv[1:4]
zoo = json.load(open(f"{out}/zoo.json"))
rows = ["| model | architecture as imported | ingredients: mean val / test | uniform | greedy | gis | ls | pls | ensemble |", "|---|---|---|---|---|---|---|---|---|"]
for name, made in zoo.items():
    if "init" not in made:
        continue
    ing = f"{out}/{name}"
    files = [i["file"] for i in made["ingredients"]]
    report = json.loads(subprocess.run([b, "import", *files, "--init", made["init"], "--row-normalize", "false", "--dataset", "cora", "--data-dir", data, "--out", ing, "--json", *made["flags"]], check=True, capture_output=True, text=True).stdout)
    run = f"{out}/{name}-run"
    subprocess.run([b, "soup", "--ingredients", ing, "--strategy", "all", "--parts", "8", "--sample", "4", "--device", "cpu", "--data-dir", data, "--out", run], check=True, capture_output=True)
    by = {r["strategy"]: r for r in json.load(open(f"{run}/comparison.json"))}
    vals = [i["val_acc"] for i in made["ingredients"]]
    tests = [i["test_acc"] for i in made["ingredients"]]
    cell = lambda s: f"{100 * by[s]['val_acc']:.1f} / {100 * by[s]['test_acc']:.1f}"
    rows.append(f"| {name} | {report['arch']['arch']}, {report['arch']['layers']} layers{', batch norm' if report['arch']['batch_norm'] else ''} | {100 * sum(vals) / len(vals):.1f} / {100 * sum(tests) / len(tests):.1f} | " + " | ".join(cell(s) for s in ["uniform", "greedy", "gis", "ls", "pls", "ensemble"]) + " |")
text = "Cora, val / test accuracy (%), 3 ingredients per model\n\n" + "\n".join(rows) + "\n"
open(f"{out}/table.md", "w").write(text)
print(text)
PY
