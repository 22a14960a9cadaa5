"""Fidelity to the paper's reference code, side by side in one run: ten GCN ingredients in the
reference's DGL layout (trained from one initial model, as its ingredient trainer does, saved as
ingredient_<i>.pt and initial_model.pt) are souped by a plain-PyTorch re-implementation of the
reference (tests/python/reference_soups.py) and by gnn-soup from the same folder (imported on the
fly). Prints a markdown table of test accuracies (mean and spread over seeds for LS and PLS).

usage: fidelity.py PLANETOID_DIR WORK_DIR GNN_SOUP_BINARY [--seeds N] [--dataset cora|citeseer]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import reference_soups as ref  # noqa: E402
from pyg_models import planetoid  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("planetoid")
ap.add_argument("work")
ap.add_argument("binary")
ap.add_argument("--seeds", type=int, default=5)
ap.add_argument("--dataset", default="cora")
ap.add_argument("--ingredients", type=int, default=10)
args = ap.parse_args()

data = planetoid(args.dataset, args.planetoid, os.path.join(args.work, "pyg"))
x = data.x / data.x.sum(dim=-1, keepdim=True).clamp(min=1.0)  # DGL's Planetoid is row-normalised
g = ref.Graph(x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)
classes = int(data.y.max()) + 1
HIDDEN, LAYERS, DROPOUT = 64, 2, 0.5


def model():
    return ref.GCN(x.shape[1], HIDDEN, classes, LAYERS, DROPOUT)


# Ingredients as the reference trains them: one initial model, each ingredient from it, Adam,
# full batch, the last epoch's weights.
folder = os.path.join(args.work, "ingredients")
os.makedirs(folder, exist_ok=True)
torch.manual_seed(0)
init = model()
torch.save(init.state_dict(), os.path.join(folder, "initial_model.pt"))
states = []
for i in range(args.ingredients):
    m = model()
    m.load_state_dict(init.state_dict())
    torch.manual_seed(100 + i)
    opt = torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(200):
        m.train()
        opt.zero_grad()
        F.cross_entropy(m(g, g.x)[g.train_mask], g.y[g.train_mask]).backward()
        opt.step()
    torch.save(m.state_dict(), os.path.join(folder, f"ingredient_{i}.pt"))
    states.append({k: v.detach() for k, v in m.state_dict().items()})
ingredient_tests = [ref.accuracy(model(), g, g.test_mask, s) for s in states]

LS = dict(epochs=100, lr=11.0, t0=4)
PLS = dict(epochs=100, lr=11.0, t0=3, k=8, r=2)


def python_side(strategy, seed):
    start = time.perf_counter()
    if strategy == "uniform":
        soup = ref.uniform(states)
    elif strategy == "gis":
        soup = ref.gis(model(), g, states, 20)
    elif strategy == "ls":
        soup = ref.learned(model(), g, states, LS["epochs"], LS["lr"], LS["t0"], seed)
    else:
        parts = ref.metis_parts(g, PLS["k"])
        soup = ref.pls(model(), g, states, PLS["epochs"], PLS["lr"], PLS["t0"], parts, PLS["k"], PLS["r"], seed)
    return ref.accuracy(model(), g, g.test_mask, soup), time.perf_counter() - start


def gnn_soup_side(strategy, seed):
    flags = {
        "uniform": [],
        "gis": ["--granularity", "20"],
        "ls": ["--epochs", str(LS["epochs"]), "--lr", str(LS["lr"]), "--t0", str(LS["t0"]), "--init", "ones"],
        "pls": ["--epochs", str(PLS["epochs"]), "--lr", str(PLS["lr"]), "--t0", str(PLS["t0"]), "--parts", str(PLS["k"]), "--sample", str(PLS["r"]), "--init", "ones"],
    }[strategy]
    out = os.path.join(args.work, "runs", f"{strategy}-{seed}")
    cmd = [args.binary, "soup", "--ingredients", folder, "--dataset", args.dataset, "--data-dir", args.planetoid, "--device", "cpu", "--strategy", strategy, "--seed", str(seed), "--json", "--overwrite", "--out", out] + flags
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": os.path.join(args.work, "cache")})
    if done.returncode != 0:
        sys.exit(f"gnn-soup failed: {' '.join(cmd)}\n{done.stderr}")
    return json.loads(done.stdout)["test_acc"], time.perf_counter() - start


def summary(values):
    mean = 100 * statistics.mean(values)
    spread = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, spread


print(f"{args.dataset}: {args.ingredients} GCN ingredients {LAYERS}x{HIDDEN} in the reference's DGL layout; "
      f"test accuracy mean {100 * statistics.mean(ingredient_tests):.2f}%, best {100 * max(ingredient_tests):.2f}%", file=sys.stderr)
rows = []
for strategy in ["uniform", "gis", "ls", "pls"]:
    seeds = range(args.seeds) if strategy in ("ls", "pls") else range(1)
    ref_runs = [python_side(strategy, s) for s in seeds]
    ours = [gnn_soup_side(strategy, s) for s in seeds]
    (rm, rs), (om, os_) = summary([a for a, _ in ref_runs]), summary([a for a, _ in ours])
    rows.append((strategy, len(seeds), rm, rs, om, os_, om - rm))
    print(f"{strategy}: reference {rm:.2f} ± {rs:.2f}, gnn-soup {om:.2f} ± {os_:.2f}", file=sys.stderr)

print("| strategy | seeds | reference re-implementation, test % | gnn-soup, test % | difference (points) |")
print("|---|---|---|---|---|")
for strategy, n, rm, rs, om, os_, d in rows:
    print(f"| {strategy} | {n} | {rm:.2f} ± {rs:.2f} | {om:.2f} ± {os_:.2f} | {d:+.2f} |")
worst = max(abs(r[-1]) for r in rows)
print(f"\nlargest difference: {worst:.2f} points", file=sys.stderr)
sys.exit(0 if worst <= 0.5 else 1)
