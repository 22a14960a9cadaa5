"""The paper's own code (its models.GAT, tools and soups.py, on DGL 2.1.0), run on a folder of its
GAT ingredients that gnn-soup also soups (tests/python/zoo.py's ref-gat-10: ten from one init on
Cora): uniform, GIS (granularity 20), LS with the model in evaluation mode (dropout off, as
gnn-soup's --no-dropout) and LS as the reference runs it (training mode) over the seeds given.
Needs REFERENCE_DIR, a checkout of Zubes01/Enhanced-Soups-for-Graph-Neural-Networks.

usage: reference_gat.py CORA.npz FOLDER SEED...   (prints JSON)"""
import json
import os
import sys

import dgl
import numpy as np
import torch as th
import torch.nn.functional as F

sys.path.insert(0, os.environ["REFERENCE_DIR"])
import models  # noqa: E402  (the reference's)
import soups  # noqa: E402
import tools  # noqa: E402

npz, folder, seeds = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
d = np.load(npz)
n = d["x"].shape[0]
g = dgl.graph((th.tensor(d["edge_index"][0]), th.tensor(d["edge_index"][1])), num_nodes=n)
g.ndata["feat"] = th.tensor(d["x"], dtype=th.float32)
g.ndata["label"] = th.tensor(d["y"], dtype=th.long)
for split in ["train", "val", "test"]:
    mask = th.zeros(n, dtype=th.bool)
    mask[th.tensor(d[f"{split}_idx"])] = True
    g.ndata[f"{split}_mask"] = mask


def build():
    # As tests/python/zoo.py's ref-gat: 2 layers, 4 heads of 8, the reference's ReLU.
    return models.GAT(node_feats=d["x"].shape[1], edge_feats=0, n_classes=int(d["y"].max()) + 1, n_layers=2, n_heads=4, n_hidden=8, edge_emb=0,
                      activation=F.relu, dropout=0.5, input_drop=0.1, attn_drop=0.1, edge_drop=0.1, use_attn_dst=True, allow_zero_in_degree=True, residual=False)


def accuracy(state):
    m = build()
    m.load_state_dict(state)
    return {"val_acc": float(tools.validate(g, m)), "test_acc": float(tools.test(g, m))}


paths = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("ingredient_")), key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0]))
states = [th.load(p) for p in paths]
out = {"ingredients": [accuracy(s) for s in states]}
out["uniform"] = accuracy({k: sum(s[k] for s in states) / len(states) for k in states[0]})
out["gis"] = accuracy(soups.greedy_interpolated_soup(g, paths, build(), 20, show_progress=False))
out["ls_no_dropout"] = accuracy(soups.learned_soup(g, paths, build().eval(), 30, 10.0, 0.0, init="ones", CAW_T0=4, progress_bar=False))
out["ls_dropout"] = []
for seed in seeds:
    th.manual_seed(seed)
    out["ls_dropout"].append(accuracy(soups.learned_soup(g, paths, build(), 30, 10.0, 0.0, init="ones", CAW_T0=4, progress_bar=False)))
print(json.dumps(out))
