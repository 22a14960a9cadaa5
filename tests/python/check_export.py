"""Loads a state dict gnn-soup exported into the Python model it came from (strictly: every name
and shape must fit) and prints the accuracies it computes there, and its largest difference from
an expected state dict when one is given, as JSON.

usage: check_export.py KIND EXPORTED PLANETOID_DIR WORK [EXPECTED]
KIND: pyg-gcn (the tests' PyG Net), pyg-example (conv1/conv2 in a wrapper), dgl-gcn (the reference's GCN)"""
import json
import os
import sys

import torch

from pyg_models import Net, Wrapper, planetoid

kind, exported, src, work = sys.argv[1:5]
expected = sys.argv[5] if len(sys.argv) > 5 else None
data = planetoid("cora", src, os.path.join(work, "pyg"))
state = torch.load(exported)  # weights_only: what torch.load accepts by default
result = {}
if kind.startswith("pyg"):
    if kind == "pyg-gcn":
        model = Net(dict(arch="gcn", in_dim=1433, hidden=16, out_dim=7, layers=2, heads=1, dropout=0.5, batch_norm=False, row_normalize=True))
    else:
        model = Wrapper()
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(1)
else:
    import reference_soups as ref

    x = data.x / data.x.sum(dim=-1, keepdim=True).clamp(min=1.0)
    g = ref.Graph(x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)
    model = ref.GCN(1433, 16, 7, 2, 0.5)
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        pred = model(g, g.x).argmax(1)
result["val_acc"] = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
result["test_acc"] = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
if expected:
    other = torch.load(expected)
    result["max_abs_diff"] = max((state[k] - other[k]).abs().max().item() for k in other)
print(json.dumps(result))
