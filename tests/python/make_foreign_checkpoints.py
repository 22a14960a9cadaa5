"""Checkpoints as PyTorch Geometric users make them, for the import tests: models built from
PyG's own layers, trained briefly on PyG's Cora, saved with torch.save(model.state_dict()) or as
plain safetensors state dicts; and as users of the paper's reference code make them (DGL layout
and semantics, `reference_soups.py`). Prints what Python measures on them as JSON.

usage: make_foreign_checkpoints.py OUT_DIR PLANETOID_DIR"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from pyg_models import Net, Wrapper, planetoid

out, src = sys.argv[1:3]
data = planetoid("cora", src, os.path.join(out, "pyg"))


def accuracy(model):
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(dim=1)
    acc = lambda mask: (pred[mask] == data.y[mask]).float().mean().item()
    return {"val_acc": acc(data.val_mask), "test_acc": acc(data.test_mask)}


def train(model, seed, epochs=30, inputs=None):
    """Adam on the training nodes; `inputs` are the model's arguments (PyG's: x, edge_index)."""
    inputs = inputs or (data.x, data.edge_index)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(*inputs)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
    return model


def spec(arch, **kw):
    return {**dict(arch=arch, in_dim=1433, hidden=16, out_dim=7, layers=2, heads=1, dropout=0.5, batch_norm=False, row_normalize=True), **kw}
result = {}

# Three GCNs from one shared initialisation, as .pt files, and their uniform soup.
torch.manual_seed(0)
init = Net(spec("gcn"))
torch.save(init.state_dict(), os.path.join(out, "init.pt"))
gcn = []
for i in range(3):
    m = Net(spec("gcn"))
    m.load_state_dict(init.state_dict())
    train(m, seed=i + 1)
    path = os.path.join(out, f"gcn-{i}.pt")
    torch.save(m.state_dict(), path)
    gcn.append(dict(file=path, **accuracy(m)))
result["gcn"] = gcn
states = [torch.load(g["file"]) for g in gcn]
soup = Net(spec("gcn"))
soup.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
result["gcn_uniform_soup"] = accuracy(soup)

# GraphSAGE with batch norm, as a plain safetensors state dict; GAT as a training checkpoint.
torch.manual_seed(5)
sage = train(Net(spec("sage", batch_norm=True)), seed=5)
save_file({k: v.contiguous() for k, v in sage.state_dict().items()}, os.path.join(out, "sage-bn.safetensors"))
result["sage"] = dict(file=os.path.join(out, "sage-bn.safetensors"), **accuracy(sage))
torch.manual_seed(6)
gat = train(Net(spec("gat", hidden=8, heads=4, dropout=0.6)), seed=6)
torch.save({"epoch": 30, "model_state_dict": gat.state_dict()}, os.path.join(out, "gat-checkpoint.pt"))
result["gat"] = dict(file=os.path.join(out, "gat-checkpoint.pt"), **accuracy(gat))


# PyG's example style: layers as attributes conv1/conv2, the model inside a wrapper.
torch.manual_seed(7)
wrapped = train(Wrapper(), seed=7)
torch.save(wrapped.state_dict(), os.path.join(out, "example.pt"))
result["example"] = dict(file=os.path.join(out, "example.pt"), **accuracy(wrapped))

# Not a GNN gnn-soup knows: an extra head layer.
head = Net(spec("gcn")).state_dict()
head["head.weight"] = torch.zeros(7, 7)
torch.save(head, os.path.join(out, "with-head.pt"))

# The paper's reference code's models (DGL layout): three GCNs from one initial_model.pt, named
# as its trainer names them, and a 2-layer GraphSAGE as a plain safetensors file.
import reference_soups as ref

dgl_dir = os.path.join(out, "dgl")
os.makedirs(dgl_dir)
x = data.x / data.x.sum(dim=-1, keepdim=True).clamp(min=1.0)  # DGL's Cora is row-normalised
g = ref.Graph(x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)


def train_ref(model, seed):
    return train(model, seed, inputs=(g, g.x))


def ref_accuracy(model, state=None):
    return {"val_acc": ref.accuracy(model, g, g.val_mask, state), "test_acc": ref.accuracy(model, g, g.test_mask, state)}


torch.manual_seed(11)
dgl_init = ref.GCN(1433, 16, 7, 2, 0.5)
torch.save(dgl_init.state_dict(), os.path.join(dgl_dir, "initial_model.pt"))
dgl_gcn = []
for i in range(3):
    m = ref.GCN(1433, 16, 7, 2, 0.5)
    m.load_state_dict(dgl_init.state_dict())
    train_ref(m, seed=20 + i)
    path = os.path.join(dgl_dir, f"ingredient_{i}.pt")
    torch.save(m.state_dict(), path)
    dgl_gcn.append(dict(file=path, **ref_accuracy(m)))
result["dgl_gcn"] = dgl_gcn
dgl_states = [torch.load(d["file"]) for d in dgl_gcn]
result["dgl_uniform_soup"] = ref_accuracy(dgl_init, ref.uniform(dgl_states))
# LS as the reference runs it, here with dropout off so that the result is exactly comparable.
ls = ref.learned(ref.GCN(1433, 16, 7, 2, 0.5), g, dgl_states, epochs=10, lr=11.0, t0=4, seed=0, train_mode=False)
torch.save(ls, os.path.join(dgl_dir, "ls-soup-reference.pt"))
result["dgl_ls_soup"] = dict(file=os.path.join(dgl_dir, "ls-soup-reference.pt"), **ref_accuracy(dgl_init, ls))
torch.manual_seed(12)
dgl_sage = train_ref(ref.SAGE(1433, 16, 7, 2, 0.5), seed=12)
save_file({k: v.contiguous() for k, v in dgl_sage.state_dict().items()}, os.path.join(out, "dgl-sage.safetensors"))
result["dgl_sage"] = dict(file=os.path.join(out, "dgl-sage.safetensors"), **ref_accuracy(dgl_sage))
print(json.dumps(result))
