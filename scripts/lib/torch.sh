# Which torch gnn-soup builds against, and the tch release for it (scripts/torch-versions.tsv).
# Sourced by scripts/setup.sh and scripts/gpu-bundle.sh; bash.

TORCH_VERSIONS_TSV="$(dirname "${BASH_SOURCE[0]}")/../torch-versions.tsv"

# "2.11, 2.12, 2.13": the torch minor versions there is a row for.
torch_supported() {
  grep -v '^#' "$TORCH_VERSIONS_TSV" | cut -f1 | paste -sd, | sed 's/,/, /g'
}

# The tch release for a torch version ("2.11.0+cu130" or "2.11"); nothing when unsupported.
tch_for_torch() {
  local minor
  minor=$(echo "$1" | cut -d+ -f1 | cut -d. -f1,2)
  grep -v '^#' "$TORCH_VERSIONS_TSV" | awk -F'\t' -v m="$minor" '$1 == m { print $2 }'
}

# Asks interpreter $1 for its torch. Sets TORCH_VERSION (e.g. 2.11.0+cu130), TORCH_DIR (the
# package directory: lib/ and include/ inside) and TORCH_SITE (the directory holding it); returns 1
# with TORCH_PROBE_ERROR set when the interpreter cannot run or has no torch.
torch_probe() {
  local python=$1 out
  TORCH_VERSION= TORCH_DIR= TORCH_SITE= TORCH_PROBE_ERROR=
  if ! command -v "$python" >/dev/null 2>&1; then
    TORCH_PROBE_ERROR="$python: not found"
    return 1
  fi
  # stderr dropped: torch warns on import when numpy is missing, which changes nothing here.
  if ! out=$("$python" -c 'import os, torch
d = os.path.dirname(torch.__file__)
print(torch.__version__); print(d); print(os.path.dirname(d))' 2>/dev/null); then
    TORCH_PROBE_ERROR="$(command -v "$python") has no torch (import torch failed)"
    return 1
  fi
  TORCH_VERSION=$(sed -n 1p <<<"$out")
  TORCH_DIR=$(sed -n 2p <<<"$out")
  TORCH_SITE=$(sed -n 3p <<<"$out")
}

# The tch release Cargo.lock in directory $1 selects.
locked_tch() {
  awk '/^name = "tch"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$1/Cargo.lock"
}

# Pins tch (and torch-sys with it) at release $2 in directory $1's Cargo.lock, when it is not
# already: offline from cargo's cache when it can, otherwise from crates.io.
pin_tch() {
  local dir=$1 want=$2
  [ "$(locked_tch "$dir")" = "$want" ] && return 0
  echo "setup: Cargo.lock in $dir: tch $(locked_tch "$dir") -> $want"
  (cd "$dir" && { cargo update --offline -q -p tch --precise "$want" 2>/dev/null ||
    cargo update -q -p tch --precise "$want"; })
}
