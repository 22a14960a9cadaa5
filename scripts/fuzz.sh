#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with cargo-fuzz (libFuzzer, nightly Rust), one target
# after another, each for SECONDS (default 600), from seed inputs made here: a real checkpoint,
# Planetoid pickles, an npz, OGB-style CSV, a run's events.jsonl, a stopped run's job.json and
# LS/PLS states, the recipes in assets/recipes. Prints each target's
# executions and whether it found a crash (kept under fuzz/artifacts/<target>/).
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(checkpoint pickle npz ogb_csv events saved_state recipe)
scripts/setup.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
cargo build --release --quiet
bin=target/release/gnn-soup
planetoid="${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seeds.
mkdir -p fuzz/corpus/{checkpoint,pickle,npz,ogb_csv,events,saved_state,recipe}
"$bin" train --dataset csbm:nodes=200,train=40,val=60,test=60 --ingredients 2 --epochs 2 --device cpu --out "$work/run" >/dev/null 2>&1
cp "$work/run/ingredient-00.safetensors" fuzz/corpus/checkpoint/
"$bin" soup --ingredients "$work/run" --strategy all --epochs 3 --parts 4 --sample 2 --device cpu --out "$work/soup" >/dev/null 2>&1
cp "$work/soup/events.jsonl" fuzz/corpus/events/
# A stopped LS (Adam, early stopping) and a stopped PLS (SGD) as `soup --resume` finds them: held
# at epoch 5 and signalled there, with the settings fuzz_targets/saved_state.rs checks against.
stopped_at_5() {
    local out=$1
    shift
    GNN_SOUP_TEST_HOLD_AT_STEP=5 "$bin" soup --ingredients "$work/run" --device cpu --out "$out" "$@" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 600); do
        grep -q "holding at step 5" "$out/events.jsonl" 2>/dev/null && break
        sleep 0.2
    done
    kill -TERM "$pid"
    wait "$pid" || true
}
stopped_at_5 "$work/ls" --strategy ls --epochs 50 --optimizer auto --holdout 0.2 --patience 40
stopped_at_5 "$work/pls" --strategy pls --epochs 50 --lr 5 --parts 4 --sample 2
cp "$work/ls/state-ls.json" "$work/pls/state-pls.json" fuzz/corpus/saved_state/
cp "$work/ls/job.json" fuzz/corpus/saved_state/job-ls.json
cp "$work/pls/job.json" fuzz/corpus/saved_state/job-pls.json
cp assets/recipes/*.toml fuzz/corpus/recipe/
for s in y ty ally test.index graph; do cp "$planetoid/ind.citeseer.$s" "fuzz/corpus/pickle/citeseer.$s"; done
.venv/bin/python - "$work" <<'PY'
import sys, zipfile, numpy as np, torch
w = sys.argv[1]
np.savez(f"{w}/g.npz", adj_shape=np.array([3, 3]), adj_indptr=np.array([0, 1, 2, 3]), adj_indices=np.array([1, 2, 0]), adj_data=np.ones(3),
         attr_shape=np.array([3, 2]), attr_indptr=np.array([0, 1, 2, 3]), attr_indices=np.array([0, 1, 0]), attr_data=np.ones(3), labels=np.array([0, 1, 0]))
torch.save({"w": torch.ones(2, 3)}, f"{w}/m.pt")
with zipfile.ZipFile(f"{w}/m.pt") as z:
    name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    open(f"{w}/data.pkl", "wb").write(z.read(name))
PY
cp "$work/g.npz" fuzz/corpus/npz/
cp "$work/data.pkl" fuzz/corpus/pickle/torch-state-dict.pkl
printf '0,1\n1,2\n2,0\n' > fuzz/corpus/ogb_csv/edges.csv
printf '0.5,-1.25,3e-2\n1,2,3\n' > fuzz/corpus/ogb_csv/features.csv

export LD_LIBRARY_PATH="$PWD/.venv/libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "| target | seconds | executions | crashes |"
echo "|---|---|---|---|"
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
    log="fuzz/logs/$t.log"
    # No sanitizer: libtorch is not built with one. -rss_limit_mb: an input that makes the reader
    # allocate beyond 2 GiB counts as a finding too.
    set +e
    cargo +nightly fuzz run --sanitizer none "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1
    rc=$?
    set -e
    # libFuzzer's last status line ("#N ..."), also when it stopped at a finding.
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
    crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
    echo "| $t | $seconds | ${runs:-?} | $crashes |"
    if [ "$rc" -ne 0 ]; then echo "$t stopped with exit $rc; its log: $log" >&2; grep -E "panicked|ERROR|allocation" "$log" | head -5 >&2 || true; fi
done
