#!/usr/bin/env bash
# Builds on this machine what the GPU check needs on a bare GPU machine (bash, python3 with torch,
# a GPU; no toolchain, no registry): gnn-soup and the CUDA test binary (tests/cuda.rs) built
# against PyPI's torch 2.11.0 (its Linux wheel is the CUDA 13.0 build), stripped, with the runner,
# in target/gpu-bundle/bundle, at most 60 MiB. docs/gpu.md says how to run it.
#
#   scripts/gpu-bundle.sh                      (make gpu-bundle)
#   GPU_BUNDLE_TORCH=2.13.0 scripts/gpu-bundle.sh      another supported PyPI torch
#   scripts/gpu-bundle.sh --torch-python PY    against PY's torch (a GPU box with a toolchain)
#
# PyPI's torch goes into .venv-torch-<version> (about 4.6 GB, once). The build runs in a copy of
# the working tree (target/gpu-bundle/src) whose Cargo.lock pins the tch release for that torch,
# so this checkout's Cargo.lock and build are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/torch.sh

LIMIT_MIB=60
WORK=target/gpu-bundle
BUNDLE=$WORK/bundle
fail() { echo "error: $*" >&2; exit 1; }

python=
if [ "${1:-}" = --torch-python ]; then
  python=${2:?--torch-python needs an interpreter}
else
  version=${GPU_BUNDLE_TORCH:-2.11.0}
  [ -n "$(tch_for_torch "$version")" ] || fail "GPU_BUNDLE_TORCH=$version: gnn-soup builds against torch $(torch_supported)"
  venv=.venv-torch-$(echo "$version" | cut -d. -f1,2)
  python=$venv/bin/python
  if ! torch_probe "$python" || [ "${TORCH_VERSION%%+*}" != "$version" ]; then
    echo "gpu-bundle: installing torch==$version from PyPI into $venv (about 4.6 GB, once)"
    [ -x "$python" ] || python3 -m venv "$venv"
    "$python" -m pip install --disable-pip-version-check -q "torch==$version"
  fi
fi
torch_probe "$python" || fail "$TORCH_PROBE_ERROR"
tch=$(tch_for_torch "$TORCH_VERSION")
[ -n "$tch" ] || fail "$python has torch $TORCH_VERSION; gnn-soup builds against torch $(torch_supported)"
minor=$(echo "$TORCH_VERSION" | cut -d+ -f1 | cut -d. -f1,2)
echo "gpu-bundle: building against torch $TORCH_VERSION ($TORCH_DIR) with tch $tch"

# The working tree as git sees it (tracked files still there, and new ones; nothing ignored). tar
# keeps the files' times, so cargo rebuilds only what changed since the last bundle.
rm -rf "$WORK/src"
mkdir -p "$WORK/src"
git ls-files -co --exclude-standard -z |
  while IFS= read -r -d '' f; do [ ! -e "$f" ] || printf '%s\0' "$f"; done |
  tar --null -cf - -T - | tar -xf - -C "$WORK/src"
pin_tch "$WORK/src" "$tch"

target=$PWD/$WORK/target
build() {
  (cd "$WORK/src" && LIBTORCH=$TORCH_DIR CARGO_TARGET_DIR=$target GNN_SOUP_NO_RPATH=1 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo "$@" --release --locked)
}
build build --bin gnn-soup
tests_bin=$(build test --test cuda --no-run --message-format=json |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda" and m.get("executable"):
        print(m["executable"])')
[ -x "$tests_bin" ] || fail "cargo built no CUDA test binary"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/lib"
cp "$target/release/gnn-soup" "$BUNDLE/gnn-soup"
cp "$tests_bin" "$BUNDLE/cuda-tests"
cp scripts/gpu-runner.sh "$BUNDLE/run.sh"
cp scripts/lib/torch.sh "$BUNDLE/lib/torch.sh"
cp scripts/torch-versions.tsv "$BUNDLE/torch-versions.tsv"
echo "$minor" >"$BUNDLE/torch-version"
{
  echo "gnn-soup GPU bundle: ./run.sh [OUT_DIR] on a machine with python3 + torch $minor (+ a GPU)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%MZ) against torch $TORCH_VERSION, tch $tch"
} >"$BUNDLE/BUILD.txt"

size=$(du -sb "$BUNDLE" | cut -f1)
mib=$(( (size + 1048575) / 1048576 ))
ls -l "$BUNDLE"
[ "$size" -le $((LIMIT_MIB * 1048576)) ] || fail "the bundle is $mib MiB, over the $LIMIT_MIB MiB that may travel to a GPU machine"
echo "gpu-bundle: $BUNDLE, $mib MiB (limit $LIMIT_MIB): copy it to the GPU machine and run $BUNDLE/run.sh OUT_DIR there"
