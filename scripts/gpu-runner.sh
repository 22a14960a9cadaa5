#!/usr/bin/env bash
# The GPU check, run where the GPU bundle was copied (`make gpu-bundle`; docs/gpu.md). Needs only
# bash, python3 with the torch the bundle was built against, and (for the GPU half) an NVIDIA GPU:
# no toolchain, no registry, nothing fetched. In the bundle this file is run.sh.
#
#   ./run.sh [OUT_DIR]          (default OUT_DIR: ./gpu-check)
#
# It finds libtorch through python3's torch and puts its lib/ on the library path of the binaries,
# then: lists the devices; runs the CUDA tests (skipped, saying so, without a GPU); trains 10 GCN
# 3x256 ingredients on csbm-arxiv and times LS, PLS and GIS on the GPU and on the CPU; a
# products-shaped PLS run when the time budget has room; cross-checks the peak device memory
# gnn-soup reports (NVML, per process) against nvidia-smi's samples and libtorch's allocator;
# captures the dashboard's GPU panel in tmux when tmux is there; and writes OUT_DIR/summary.md.
#
# Environment: PYTHON (python3); GNN_SOUP_CHECK_BUDGET_S (420: optional steps start only if they
# fit); GNN_SOUP_CHECK_DATASET (csbm-arxiv); GNN_SOUP_CHECK_EPOCHS (LS/PLS epochs, 20);
# GNN_SOUP_CHECK_TRAIN_EPOCHS (3); GNN_SOUP_CHECK_CPU (1: also the CPU rows; 0: GPU rows only).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
START=$SECONDS
PYTHON=${PYTHON:-python3}
BIN=${GNN_SOUP_BIN:-$HERE/gnn-soup}
TESTS=${GNN_SOUP_CUDA_TESTS:-$HERE/cuda-tests}
BUDGET=${GNN_SOUP_CHECK_BUDGET_S:-420}
DATASET=${GNN_SOUP_CHECK_DATASET:-csbm-arxiv}
EPOCHS=${GNN_SOUP_CHECK_EPOCHS:-20}
TRAIN_EPOCHS=${GNN_SOUP_CHECK_TRAIN_EPOCHS:-3}
CPU_ROWS=${GNN_SOUP_CHECK_CPU:-1}

refuse() { echo "error: $*" >&2; exit 2; }

# --- the torch the binaries need, found through python3 (before anything else runs) ---
[ -f "$HERE/torch-version" ] && [ -f "$HERE/lib/torch.sh" ] ||
  refuse "$HERE is not a GPU bundle (torch-version or lib/torch.sh missing): make gpu-bundle builds one"
WANT=$(cat "$HERE/torch-version")
source "$HERE/lib/torch.sh"
command -v "$PYTHON" >/dev/null 2>&1 ||
  refuse "$PYTHON not found: the bundle finds libtorch through python3's torch $WANT (set PYTHON=/path/to/python3)"
torch_probe "$PYTHON" ||
  refuse "$TORCH_PROBE_ERROR: this bundle was built against torch $WANT and loads its libraries from python3's torch. Install torch $WANT (pip install 'torch==$WANT.*'), or set PYTHON to an interpreter that has it."
have=$(echo "$TORCH_VERSION" | cut -d+ -f1 | cut -d. -f1,2)
[ "$have" = "$WANT" ] ||
  refuse "$(command -v "$PYTHON") has torch $TORCH_VERSION ($TORCH_DIR), but this bundle was built against torch $WANT and runs only with it. Use an interpreter with torch $WANT (PYTHON=...), or build a bundle for $have: GPU_BUNDLE_TORCH=$have.0 make gpu-bundle (supported: $(torch_supported))."
[ -x "$BIN" ] || refuse "$BIN missing: the bundle is incomplete"
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

OUT=${1:-gpu-check}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
export GNN_SOUP_DATA_DIR=$OUT/data
step() { echo; echo "== $* ($((SECONDS - START)) s)"; }
left() { echo $((BUDGET - (SECONDS - START))); }
status=0

step "devices (torch $TORCH_VERSION from $TORCH_DIR)"
"$BIN" devices || { echo "gnn-soup does not start against $TORCH_DIR/lib"; exit 1; }
"$BIN" devices --json >"$OUT/devices.json"
GPUS=$("$PYTHON" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["cuda_devices"]))' "$OUT/devices.json")
CARD=$("$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))["cuda_devices"]; print(", ".join(x["name"] for x in d) or "no CUDA device")' "$OUT/devices.json")
SMI=$(command -v nvidia-smi || true)
# A GPU the driver shows but libtorch does not see (a driver older than torch's CUDA runtime, a
# container without the device) is a failure of the check, not a CPU machine.
if [ "$GPUS" = 0 ] && [ -n "$SMI" ] && "$SMI" -L 2>/dev/null | grep -q '^GPU'; then
  CARD="$("$SMI" -L | head -1) seen by nvidia-smi, but libtorch sees no CUDA device"
  echo "error: $CARD (driver: $("$SMI" --query-gpu=driver_version --format=csv,noheader | head -1); torch $TORCH_VERSION)"
  status=1
fi

step "CUDA tests"
count=$("$TESTS" --list --ignored 2>/dev/null | grep -c ': test$')
if [ "$GPUS" = 0 ]; then
  TESTS_RESULT="skipped: no CUDA device ($count tests)"
  echo "no CUDA device: the $count CUDA tests are skipped"
else
  GNN_SOUP_BIN=$BIN "$TESTS" --include-ignored --test-threads 1 2>&1 | tee "$OUT/cuda-tests.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  TESTS_RESULT=$(grep '^test result' "$OUT/cuda-tests.txt" | tail -1 | sed 's/^test result: //; s/; finished.*//')
fi

# The highest memory nvidia-smi reports for process $1 and its children (gnn-soup runs under
# `timeout`) while it runs, in MiB, into file $2: a reading independent of gnn-soup's own NVML
# sampler. 0 when nvidia-smi never lists them (in a container it reports the host's process ids).
smi_peak() {
  local pid=$1 file=$2 peak=0 now pids
  while kill -0 "$pid" 2>/dev/null; do
    pids=" $pid $(ps -o pid= --ppid "$pid" 2>/dev/null | tr -s ' \n' ' ') "
    now=$("$SMI" --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
      awk -F', ' -v p="$pids" 'index(p, " " $1 " ") { s += $2 } END { print s + 0 }')
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  echo "$peak" >"$file"
}

# soup DEVICE STRATEGY INGREDIENTS NAME [extra args]: one timed soup, its JSON in $OUT/NAME.json.
soup() {
  local device=$1 strategy=$2 ingredients=$3 name=$4 args=()
  shift 4
  [ "$strategy" = gis ] || args=(--epochs "$EPOCHS")
  # SOUP_TIMEOUT (seconds, 0: none) stops a soup with SIGTERM: it keeps the best soup so far and
  # its report says partial.
  timeout -k 30 "${SOUP_TIMEOUT:-0}" "$BIN" soup --ingredients "$ingredients" --strategy "$strategy" \
    "${args[@]}" "$@" --device "$device" --out "$OUT/$name" --overwrite --json >"$OUT/$name.json" &
  local pid=$! sampler=
  if [ -n "$SMI" ] && [ "$device" != cpu ]; then
    smi_peak "$pid" "$OUT/$name.smi" &
    sampler=$!
  fi
  wait "$pid"
  case $? in
    0) ;;
    124) echo "$name stopped at the time budget (${SOUP_TIMEOUT:-0} s); a report, if any, is partial" ;;
    *) echo "$name failed"; status=1 ;;
  esac
  [ -z "$sampler" ] || wait "$sampler"
}

DEVICES=()
[ "$GPUS" != 0 ] && DEVICES+=(cuda)
[ "$CPU_ROWS" = 1 ] || [ "$GPUS" = 0 ] && DEVICES+=(cpu)
TRAIN_DEVICE=${DEVICES[0]}
FIRST_LS=$OUT/${DEVICES[0]}-ls

step "$DATASET: 10 GCN 3x256 ingredients, $TRAIN_EPOCHS epochs each, on $TRAIN_DEVICE"
ING=$OUT/ingredients
"$BIN" train --dataset "$DATASET" --arch gcn --layers 3 --hidden 256 --ingredients 10 \
  --epochs "$TRAIN_EPOCHS" --device "$TRAIN_DEVICE" --out "$ING" --overwrite --json >"$OUT/train.json" ||
  { echo "training failed: no soups (the summary says so)"; status=1; DEVICES=(); }

for device in "${DEVICES[@]}"; do
  for s in ls pls gis; do
    step "$s on $device"
    soup "$device" "$s" "$ING" "$device-$s"
  done
done

if [ "$GPUS" != 0 ] && [ "$(left)" -gt 240 ]; then
  step "products-shaped PLS on cuda ($(left) s of the budget left)"
  PING=$OUT/products-ingredients
  timeout -k 30 $(($(left) - 60)) "$BIN" train --dataset csbm-products --arch sage --layers 3 \
    --hidden 256 --ingredients 10 --epochs 2 --device cuda --out "$PING" --overwrite --json \
    >"$OUT/products-train.json"
  case $? in
    0) EPOCHS=10 SOUP_TIMEOUT=$(($(left) > 90 ? $(left) - 30 : 60)) soup cuda pls "$PING" products-pls ;;
    124) echo "products-shaped ingredients not trained within the budget: no products row" ;;
    *) echo "products-shaped training failed (its message is above): no products row"; status=1 ;;
  esac
else
  echo "products-shaped PLS skipped: no CUDA device, or under 240 s of the ${BUDGET} s budget left"
fi

step "the dashboard's GPU panel (tmux)"
if [ ! -d "$FIRST_LS" ]; then
  echo "no LS run to show: no capture" | tee "$OUT/workbench.txt"
elif command -v tmux >/dev/null 2>&1; then
  tmux kill-session -t gnn-soup-check 2>/dev/null
  tmux new-session -d -s gnn-soup-check -x 140 -y 45 \
    "LD_LIBRARY_PATH='$LD_LIBRARY_PATH' '$BIN' tui --attach '$FIRST_LS'"
  # Waits for the panel to be drawn (it says GPU or that there is none), up to 20 s.
  for _ in $(seq 200); do
    tmux capture-pane -p -t gnn-soup-check >"$OUT/workbench.txt" 2>/dev/null
    grep -q "GPU" "$OUT/workbench.txt" && break
    sleep 0.1
  done
  tmux kill-session -t gnn-soup-check 2>/dev/null
  cat "$OUT/workbench.txt"
else
  echo "tmux not installed here: no capture" | tee "$OUT/workbench.txt"
fi

step "summary"
"$PYTHON" - "$OUT" "$CARD" "$TORCH_VERSION" "$TESTS_RESULT" "$DATASET" "$EPOCHS" "$GPUS" <<'PY'
import json, os, statistics, sys
out, card, torch, tests, dataset, epochs, gpus = sys.argv[1:]
mib = lambda b: "-" if b is None else f"{b / 2**20:,.0f}"

def row(device, strategy, name):
    try:
        r = json.load(open(f"{out}/{name}.json"))
        if "error" in r:
            raise ValueError(r["error"])
    except Exception as e:
        return f"| {device} | {strategy} | failed: {e} | | | | | | |"
    h = r.get("history", [])
    per = statistics.median(b["seconds"] - a["seconds"] for a, b in zip(h, h[1:])) if len(h) > 1 else None
    nvml, alloc = r.get("peak_device_bytes"), r.get("peak_device_allocated_bytes")
    smi = open(f"{out}/{name}.smi").read().strip() if os.path.exists(f"{out}/{name}.smi") else "0"
    smi_b = int(smi) * 2**20 or None  # 0: nvidia-smi never listed the process
    if device == "cpu":
        check = "-"
    elif nvml is None or alloc is None:
        check = "no NVML reading" if nvml is None else "no libtorch reading"
    else:
        ok = alloc <= nvml and (smi_b is None or smi_b <= 1.1 * nvml + 64 * 2**20)
        check = ("ok" if ok else "DIFFERS") + (" (no nvidia-smi reading)" if smi_b is None else "")
    partial = " (stopped at the budget: partial)" if r.get("partial") else ""
    return (f"| {device} | {strategy}{partial} | {r['seconds']:.1f} | {'-' if per is None else f'{per:.3f}'} "
            f"| {100 * r['val_acc']:.2f}% | {mib(nvml)} | {mib(smi_b)} | {mib(alloc)} | {check} |")

rows = []
if not os.path.exists(f"{out}/ingredients/manifest.json"):
    rows.append("| - | training the ingredients | failed (log.txt) | | | | | | |")
if gpus == "0":
    rows.append("| cuda | - | no CUDA device | | | | | | |")
for device in (["cuda"] if gpus != "0" else []) + (["cpu"] if os.path.exists(f"{out}/cpu-ls.json") else []):
    rows += [row(device, s, f"{device}-{s}") for s in ("ls", "pls", "gis")]
if os.path.exists(f"{out}/products-pls.json"):
    rows.append(row("cuda", "pls (csbm-products, 10 SAGE 3x256)", "products-pls"))
lines = [
    f"GPU: {card}; torch {torch}; CUDA tests: {tests}",
    f"{dataset}: 10 GCN 3x256 ingredients; LS/PLS {epochs} epochs (default settings), GIS default granularity",
    "",
    "| device | strategy | total s | median s/epoch | val | peak device MiB (gnn-soup, NVML) | max MiB (nvidia-smi samples) | peak allocated MiB (libtorch) | memory check |",
    "|---|---|---|---|---|---|---|---|---|",
] + rows
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "total $((SECONDS - START)) s; summary: $OUT/summary.md"
exit $status
