#!/usr/bin/env bash
# Fidelity to the paper's reference code on Cora (docs/checkpoints.md, "Fidelity"): gnn-soup against a
# plain-PyTorch re-implementation of the reference, same ingredients, side by side.
# usage: scripts/fidelity.sh [extra args for scripts/fidelity.py, e.g. --seeds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# PLS's METIS parts on the Python side (the reference partitions with METIS too).
.venv/bin/python -c "import pymetis" 2>/dev/null || .venv/bin/pip install --quiet pymetis
cargo build --release --quiet
planetoid="${GNN_SOUP_PLANETOID_DIR:-../shared/datasets/planetoid}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.venv/bin/python scripts/fidelity.py "$planetoid" "$work" target/release/gnn-soup "$@"
