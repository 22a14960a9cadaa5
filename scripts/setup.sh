#!/usr/bin/env bash
# Sets up what is missing, and nothing else: the libtorch that tch builds against, and a Python
# virtual environment in .venv with torch_geometric and the small packages the parity tests use.
# Re-running it is cheap: every step is skipped when already satisfied.
#
# Which torch (docs/install.md, "Which torch"):
#   GNN_SOUP_TORCH=system  the torch of $PYTHON (default python3), which must be one of
#                          scripts/torch-versions.tsv (2.11, 2.12, 2.13); nothing is downloaded
#   GNN_SOUP_TORCH=pypi    PyPI's torch 2.13.0 (with its CUDA libraries, about 5 GB) into .venv
#   unset                  keep what .venv was set up with (a system set-up keeps its interpreter
#                          unless PYTHON is given); on a first run, the torch of $PYTHON when it
#                          is supported, PyPI's otherwise
# The tch release in Cargo.lock is pinned to match, and .venv/libtorch links to that torch's
# package directory (.cargo/config.toml points LIBTORCH there).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/torch.sh

PYPI_TORCH=2.13.0            # what a pypi set-up installs
VENV=.venv
STATE=$VENV/gnn-soup-torch   # "pypi", or "system" and its interpreter: what this .venv was made with
BUILT=$VENV/gnn-soup-built   # the torch version and directory the last set-up linked for cargo
PYTHON_GIVEN=${PYTHON:-}
PYTHON=${PYTHON:-python3}
HELPERS=(torch_geometric safetensors numpy scipy)

fail() { echo "error: $*" >&2; exit 1; }
recorded_state() { cat "$STATE" 2>/dev/null || echo pypi; } # a .venv from before it: PyPI's
recorded_mode() { recorded_state | cut -d' ' -f1; }
# Read before .venv may be recreated below: what the existing build was made against.
built_before=$(cat "$BUILT" 2>/dev/null || readlink "$VENV/libtorch" 2>/dev/null || true)

# A system set-up remembers its interpreter: later runs need no PYTHON.
if [ -z "$PYTHON_GIVEN" ] && [ -f "$STATE" ] && [ "$(recorded_mode)" = system ]; then
  recorded=$(recorded_state | cut -d' ' -f2-)
  [ -n "$recorded" ] && PYTHON=$recorded
fi

command -v cargo >/dev/null 2>&1 || fail "cargo not found; install Rust from https://rustup.rs"
command -v "$PYTHON" >/dev/null 2>&1 || fail "$PYTHON not found (set PYTHON=/path/to/python3)"

mode=${GNN_SOUP_TORCH:-}
case "$mode" in
  system | pypi) ;;
  "")
    if [ -f "$STATE" ]; then
      mode=$(recorded_mode)
    elif [ -x "$VENV/bin/python" ] && torch_probe "$VENV/bin/python"; then
      mode=pypi # a .venv from before this choice existed holds PyPI's torch
    elif torch_probe "$PYTHON" && [ -n "$(tch_for_torch "$TORCH_VERSION")" ]; then
      mode=system
      echo "setup: using $(command -v "$PYTHON")'s torch $TORCH_VERSION (GNN_SOUP_TORCH=pypi installs torch $PYPI_TORCH instead)"
    else
      mode=pypi
      [ -n "$TORCH_VERSION" ] && echo "setup: $(command -v "$PYTHON")'s torch $TORCH_VERSION is not one gnn-soup builds against ($(torch_supported)); installing torch $PYPI_TORCH into $VENV"
    fi
    ;;
  *) fail "GNN_SOUP_TORCH=$mode: use system (the torch of $PYTHON, one of $(torch_supported)) or pypi (install torch $PYPI_TORCH into $VENV)" ;;
esac

if [ "$mode" = system ]; then
  torch_probe "$PYTHON" || fail "GNN_SOUP_TORCH=system: $TORCH_PROBE_ERROR. Install torch (one of $(torch_supported)), point PYTHON at an interpreter that has it, or use GNN_SOUP_TORCH=pypi."
  [ -n "$(tch_for_torch "$TORCH_VERSION")" ] ||
    fail "GNN_SOUP_TORCH=system: $(command -v "$PYTHON") has torch $TORCH_VERSION ($TORCH_DIR); gnn-soup builds against torch $(torch_supported). Install one of them, point PYTHON at an interpreter that has one, or use GNN_SOUP_TORCH=pypi (installs torch $PYPI_TORCH into $VENV)."
  # Its site directories, torch's first (a --user torch needs the user site for sympy and co).
  system_sites=$("$PYTHON" -c 'import site, sys
dirs = [sys.argv[1]] + site.getsitepackages() + [site.getusersitepackages()]
print("\n".join(dict.fromkeys(dirs)))' "$TORCH_SITE")
  python_prefix=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.prefix))')
  [ "$python_prefix" != "$(realpath -m "$VENV")" ] ||
    fail "GNN_SOUP_TORCH=system: $(command -v "$PYTHON") is $VENV's own interpreter (is $VENV activated?); deactivate it or set PYTHON to the Python whose torch to use"
  wanted_state="system $(command -v "$PYTHON")"
else
  wanted_state=pypi
fi

# A .venv made with the other choice, or from another interpreter, is rebuilt: its torch would
# shadow the one asked for, or its Python would not match the site directories it is given.
if [ -d "$VENV" ] && [ "$(recorded_state)" != "$wanted_state" ]; then
  echo "setup: $VENV was set up with $(recorded_state); recreating it for $wanted_state"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "$wanted_state" >"$STATE"

if [ "$mode" = system ]; then
  # The interpreter's torch stays where it is; .venv sees it through a .pth file, and pip puts
  # only the helpers that are missing into .venv (nothing is installed into the user's Python).
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$system_sites" >"$site/gnn-soup-system-torch.pth"
  missing=()
  for p in "${HELPERS[@]}"; do
    "$VENV/bin/python" -c "import $p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${missing[@]}"
  fi
else
  check="import torch, $(IFS=,; echo "${HELPERS[*]}")
assert torch.__version__.split('+')[0] == '$PYPI_TORCH', torch.__version__"
  if ! "$VENV/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "setup: installing torch==$PYPI_TORCH, ${HELPERS[*]} into $VENV (about 5 GB, once)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "torch==$PYPI_TORCH" "${HELPERS[@]}"
    "$VENV/bin/python" -c "$check"
  fi
fi

torch_probe "$VENV/bin/python" || fail "$VENV: $TORCH_PROBE_ERROR"
pin_tch . "$(tch_for_torch "$TORCH_VERSION")"

# A stable path for .cargo/config.toml. When the torch behind it changes (another directory, or
# another version in the same one), what was built against the old one is cleaned: the path cargo
# sees does not change, so it would not rebuild by itself.
ln -sfn "$TORCH_DIR" "$VENV/libtorch"
built_now="$TORCH_VERSION $TORCH_DIR"
if [ -n "$built_before" ] && [ "$built_before" != "$built_now" ] && [ "$built_before" != "$TORCH_DIR" ]; then
  echo "setup: building against torch $TORCH_VERSION ($TORCH_DIR) now; cleaning what was built against the previous torch"
  cargo clean -q -p torch-sys -p tch -p gnn-soup 2>/dev/null || true
fi
echo "$built_now" >"$BUILT"
