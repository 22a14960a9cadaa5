"""The paper's reference souping code itself, timed: its `soups.learned_soup`, `soups.pls` and
`soups.greedy_interpolated_soup`, imported from a checkout of the reference repository
(REFERENCE_DIR; nothing of it is copied here), run in its own environment (DGL 2.1, torch
2.2.1), on a graph exported by `gnn-soup data export` and on ingredients exported by
`gnn-soup export --layout dgl` (the same weights gnn-soup soups). See scripts/bench-reference-dgl.sh.

usage: reference_dgl.py REFERENCE_DIR GRAPH.npz INGREDIENT_DIR ARCH STRATEGY [--epochs N]
       [--lr LR] [--t0 T0] [--parts K] [--sample R] [--partition-dir DIR] [--granularity G]
       [--threads T] [--dropout P] [--init ones|uniform|normal] [--seed S]
ARCH is gcn or sage (3x256, as gnn-soup exported them); INGREDIENT_DIR holds ingredient-*.pt.
Prints one JSON document: seconds (the souping call alone), RSS at its start and its peak, and
the soup's validation and test accuracy (evaluated after the timing, in evaluation mode).

What the reference needs of its inputs, and how this script meets it:
- LS/PLS match ingredient tensors to the model's parameters by position: every ingredient is
  loaded into the template model and saved again, so its keys are in `named_parameters` order.
- LS/PLS never set the template's mode: it is put in training mode (dropout on while fitting,
  as gnn-soup fits by default).
- PLS reads the partition that `dgl.distributed.partition_graph(..., part_method="metis",
  balance_ntypes=val_mask, balance_edges=True)` wrote (made once, outside the timing, by
  `--partition-only`) and is given it preloaded (`partition.preload_partitions`).
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np
import torch


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """The highest resident size seen while the block runs (sampled every 20 ms: ru_maxrss
    would keep the peak of the loading before it)."""

    def __enter__(self):
        self.start = rss_bytes()
        self.peak = self.start
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_bytes())


p = argparse.ArgumentParser()
p.add_argument("reference_dir")
p.add_argument("graph")
p.add_argument("ingredients")
p.add_argument("arch", choices=["gcn", "sage"])
p.add_argument("strategy", choices=["ls", "pls", "gis", "partition-only"])
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--lr", type=float, default=11.0)
p.add_argument("--t0", type=int, default=4)
p.add_argument("--parts", type=int, default=32)
p.add_argument("--sample", type=int, default=8)
p.add_argument("--partition-dir", default=None)
p.add_argument("--granularity", type=int, default=20)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--dropout", type=float, default=0.5)
p.add_argument("--init", default="ones")
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

torch.set_num_threads(a.threads)
sys.path.insert(0, os.path.abspath(a.reference_dir))
import dgl  # noqa: E402  (after the thread count)
import partition  # noqa: E402
import soups  # noqa: E402
import tools  # noqa: E402

z = np.load(a.graph)
n = z["x"].shape[0]
g = dgl.graph((torch.from_numpy(z["edge_index"][0]), torch.from_numpy(z["edge_index"][1])), num_nodes=n)
g.ndata["feat"] = torch.from_numpy(z["x"])
g.ndata["label"] = torch.from_numpy(z["y"])
for split in ("train", "val", "test"):
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.from_numpy(z[f"{split}_idx"])] = True
    g.ndata[f"{split}_mask"] = mask

name = {"gcn": "gcn", "sage": "graphsage"}[a.arch]
model = tools.create_proper_model(g, name, 3, 256, a.dropout, aggregator_type="mean", execute_silently=True)

if a.strategy == "partition-only":
    # What the reference's README runs before PLS (its partition step), once.
    os.makedirs(a.partition_dir, exist_ok=True)
    t = time.perf_counter()
    dgl.distributed.partition_graph(g, "graph", a.parts, a.partition_dir, num_hops=1,
                                    part_method="metis", balance_ntypes=g.ndata["val_mask"],
                                    balance_edges=True)
    print(json.dumps({"partition_seconds": time.perf_counter() - t}))
    sys.exit(0)

# Ingredients in the template's parameter order (see above), in a scratch directory.
scratch = tempfile.mkdtemp(prefix="reference-ingredients-")
paths = []
for i, src in enumerate(sorted(glob.glob(os.path.join(a.ingredients, "ingredient-*.pt")))):
    model.load_state_dict(torch.load(src))
    paths.append(os.path.join(scratch, f"ingredient_{i}.pt"))
    torch.save(model.state_dict(), paths[-1])
if not paths:
    sys.exit(f"no ingredient-*.pt in {a.ingredients}")

torch.manual_seed(a.seed)
np.random.seed(a.seed)
model.train()
parts = None
if a.strategy == "pls":
    json_file = os.path.join(a.partition_dir, "graph.json")
    if not os.path.exists(json_file):
        sys.exit(f"no partition at {json_file}: run with partition-only first")
    parts = partition.preload_partitions(json_file, a.parts)

with PeakRss() as rss:
    t = time.perf_counter()
    if a.strategy == "ls":
        soup = soups.learned_soup(g, paths, model, a.epochs, a.lr, 0.0, init=a.init, CAW_T0=a.t0,
                                  progress_bar=False)
    elif a.strategy == "pls":
        soup = soups.pls(paths, model, a.epochs, a.lr, 0.0, a.init, a.t0, json_file, a.sample,
                         a.parts, preloaded_parts=parts, progress_bar=False)
    else:
        soup = soups.greedy_interpolated_soup(g, paths, model, a.granularity, show_progress=False)
    seconds = time.perf_counter() - t

# The soup's accuracy, in evaluation mode (the fit's template was in training mode).
model.load_state_dict({k: v.detach() for k, v in soup.items()}, strict=False)
model.eval()
model.disable_minibatching()
with torch.no_grad():
    pred = model(g, g.ndata["feat"]).argmax(1)
acc = {s: float((pred[g.ndata[f"{s}_mask"]] == g.ndata["label"][g.ndata[f"{s}_mask"]]).float().mean())
       for s in ("val", "test")}
print(json.dumps({
    "side": "reference",
    "strategy": a.strategy,
    "seconds": seconds,
    "rss_start_bytes": rss.start,
    "peak_rss_bytes": rss.peak,
    "val_acc": acc["val"],
    "test_acc": acc["test"],
    "ingredients": len(paths),
}))
