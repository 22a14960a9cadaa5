"""Evaluates a gnn-soup checkpoint with PyTorch Geometric on a Planetoid dataset read by PyG's
own loader, and prints {"val_acc": ..., "test_acc": ...} as JSON.

usage: pyg_eval.py CHECKPOINT NAME PLANETOID_DIR WORK_DIR"""
import json
import sys

import torch
from pyg_models import load_checkpoint, planetoid

ckpt, name, src_dir, work = sys.argv[1:5]
data = planetoid(name, src_dir, work)
model, meta = load_checkpoint(ckpt)
with torch.no_grad():
    pred = model(data.x, data.edge_index).argmax(dim=1)
acc = lambda mask: (pred[mask] == data.y[mask]).float().mean().item()
print(json.dumps({"val_acc": acc(data.val_mask), "test_acc": acc(data.test_mask), "edges": int(data.edge_index.size(1))}))
