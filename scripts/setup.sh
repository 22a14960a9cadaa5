#!/usr/bin/env bash
# Sets up what is missing, and nothing else: a Python virtual environment in .venv holding the
# PyPI torch wheel (the libtorch that tch builds against), torch_geometric and the small packages
# the parity tests use. Re-running it is cheap: every step is skipped when already satisfied.
#
# Use your own libtorch instead by exporting LIBTORCH=/path/to/libtorch before building; the
# Python environment is still created because the PyG parity tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0          # what tch 0.26 is built for
VENV=.venv
PYTHON=${PYTHON:-python3}

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

check='import torch, torch_geometric, safetensors, numpy, scipy
assert torch.__version__.split("+")[0] == "'"$TORCH_VERSION"'", torch.__version__'
if ! "$VENV/bin/python" -c "$check" >/dev/null 2>&1; then
  echo "setup: installing torch==$TORCH_VERSION, torch_geometric and test helpers into $VENV (about 5 GB, once)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "torch==$TORCH_VERSION" torch_geometric safetensors numpy scipy
  "$VENV/bin/python" -c "$check"
fi

# A stable path for .cargo/config.toml, independent of the Python minor version.
torch_dir=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if [ "$(readlink "$VENV/libtorch" 2>/dev/null)" != "$torch_dir" ]; then
  ln -sfn "$torch_dir" "$VENV/libtorch"
fi
