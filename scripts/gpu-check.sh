#!/usr/bin/env bash
# The GPU check on a GPU machine that can build (a Rust toolchain and crates.io): builds the GPU
# bundle against the torch of $PYTHON (default python3; one of scripts/torch-versions.tsv) and runs
# it there. A bare GPU machine gets a bundle built elsewhere instead: `make gpu-bundle`, docs/gpu.md.
#
# usage: scripts/gpu-check.sh [OUT_DIR]      (default target/gpu-check; summary in OUT_DIR/summary.md)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/gpu-bundle.sh --torch-python "${PYTHON:-python3}"
exec target/gpu-bundle/bundle/run.sh "${1:-target/gpu-check}"
