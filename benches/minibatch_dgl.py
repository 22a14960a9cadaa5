"""The paper's reference trainer's minibatch loop, timed per epoch: its own
`ingredient_trainer.train_full_set_minibatched` with its `models.MinibatchGraphSAGE` (DGL's
`MultiLayerNeighborSampler` and `dgl.dataloading.DataLoader`, Adam, cross-entropy), imported
from a checkout of the reference repository, on a graph exported by `gnn-soup data export`.
Nothing of the reference's code is copied here.

usage: minibatch_dgl.py REFERENCE_DIR GRAPH.npz FANOUT BATCH EPOCHS THREADS HIDDEN LAYERS
    FANOUT is one number for every layer (the reference's `sampled_neighbors`; -1 = all).
prints one JSON line: {"side": "dgl", "epoch_seconds": [...], "seeds": N, ...}
"""
import json
import os
import sys
import time

import numpy as np
import torch

ref, path, fanout, batch, epochs, threads, hidden, layers = sys.argv[1:9]
fanout, batch, epochs, threads = int(fanout), int(batch), int(epochs), int(threads)
hidden, layers = int(hidden), int(layers)
torch.set_num_threads(threads)
sys.path.insert(0, os.path.abspath(ref))
import dgl  # noqa: E402  (after the thread count)
import ingredient_trainer  # noqa: E402
import models  # noqa: E402

z = np.load(path)
n = z["x"].shape[0]
g = dgl.graph((torch.from_numpy(z["edge_index"][0]), torch.from_numpy(z["edge_index"][1])), num_nodes=n)
g.ndata["feat"] = torch.from_numpy(z["x"])
g.ndata["label"] = torch.from_numpy(z["y"])
mask = torch.zeros(n, dtype=torch.bool)
mask[torch.from_numpy(z["train_idx"])] = True
g.ndata["train_mask"] = mask
train_nids = torch.where(mask)[0]
classes = int(z["y"].max()) + 1

torch.manual_seed(0)
model = models.MinibatchGraphSAGE(z["x"].shape[1], hidden, 0.5, "mean", classes, layers)
seconds = []
for _ in range(epochs):
    t = time.perf_counter()
    ingredient_trainer.train_full_set_minibatched(
        g, model, 1, 0.01, 5e-4, train_nids, batch, fanout, print_progress=False, device="cpu"
    )
    seconds.append(time.perf_counter() - t)
print(json.dumps({
    "side": "dgl",
    "epoch_seconds": seconds,
    "seeds": int(train_nids.shape[0]),
    "fanout": fanout,
    "batch": batch,
}))
