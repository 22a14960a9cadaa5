"""Evaluates a gnn-soup checkpoint with PyTorch Geometric on a Planetoid dataset read by PyG's
own loader, and prints {"val_acc": ..., "test_acc": ...} as JSON.

usage: pyg_eval.py CHECKPOINT NAME PLANETOID_DIR WORK_DIR"""
import json
import os
import sys

import torch
from torch_geometric.datasets import Planetoid

from pyg_models import load_checkpoint

ckpt, name, src_dir, work = sys.argv[1:5]
pyg_name = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}[name]
raw = os.path.join(work, pyg_name, "raw")
os.makedirs(raw, exist_ok=True)
for suffix in ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]:
    link = os.path.join(raw, f"ind.{name}.{suffix}")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(os.path.join(src_dir, f"ind.{name}.{suffix}")), link)
data = Planetoid(work, pyg_name)[0]
model, meta = load_checkpoint(ckpt)
with torch.no_grad():
    pred = model(data.x, data.edge_index).argmax(dim=1)
acc = lambda mask: (pred[mask] == data.y[mask]).float().mean().item()
print(json.dumps({"val_acc": acc(data.val_mask), "test_acc": acc(data.test_mask), "edges": int(data.edge_index.size(1))}))
