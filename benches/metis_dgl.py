"""DGL's METIS call, as the paper's reference partitions for PLS (`dgl.distributed.partition_graph`
with `part_method="metis", balance_ntypes=val_mask, balance_edges=True` calls
`dgl.metis_partition_assignment` with those arguments), timed on a graph exported by
`gnn-soup data export`, with the same quality measures as `examples/partition_timing.rs`.

usage: python metis_dgl.py GRAPH.npz K REPEATS THREADS   (one JSON line on stdout)
"""
import json
import sys
import time

import numpy as np
import torch

path, k, repeats, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
import dgl  # noqa: E402  (after the thread count)

z = np.load(path)
src, dst = torch.from_numpy(z["edge_index"][0]), torch.from_numpy(z["edge_index"][1])
n = z["x"].shape[0]
g = dgl.graph((src, dst), num_nodes=n)
val_mask = torch.zeros(n, dtype=torch.int64)
val_mask[torch.from_numpy(z["val_idx"])] = 1

seconds = []
for _ in range(repeats):
    t = time.perf_counter()
    part = dgl.metis_partition_assignment(g, k, balance_ntypes=val_mask, balance_edges=True)
    seconds.append(time.perf_counter() - t)
part = part.numpy()


def imbalance(weight):
    per = np.bincount(part, weights=weight, minlength=k)
    return float(per.max() / (per.sum() / k))


degree = np.bincount(src.numpy(), minlength=n).astype(float)
print(json.dumps({
    "side": "dgl",
    "k": k,
    "seconds": seconds,
    "edge_cut": float((part[src.numpy()] != part[dst.numpy()]).mean()),
    "max_part_nodes": imbalance(np.ones(n)),
    "max_part_val": imbalance(val_mask.numpy().astype(float)),
    "max_part_edges": imbalance(degree),
}))
