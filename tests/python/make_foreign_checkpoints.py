"""Checkpoints as PyTorch Geometric users make them, for the import tests: models built from
PyG's own layers, trained briefly on PyG's Cora, saved with torch.save(model.state_dict()) or as
plain safetensors state dicts. Prints what PyG measures on them as JSON.

usage: make_foreign_checkpoints.py OUT_DIR PLANETOID_DIR"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch_geometric.nn import GCNConv

from pyg_models import Net, planetoid

out, src = sys.argv[1:3]
data = planetoid("cora", src, os.path.join(out, "pyg"))


def accuracy(model):
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(dim=1)
    acc = lambda mask: (pred[mask] == data.y[mask]).float().mean().item()
    return {"val_acc": acc(data.val_mask), "test_acc": acc(data.test_mask)}


def train(model, seed, epochs=30):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
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
class Example(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = GCNConv(1433, 16)
        self.conv2 = GCNConv(16, 7)

    def forward(self, x, edge_index):
        x = x / x.sum(dim=-1, keepdim=True).clamp(min=1.0)
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


class Wrapper(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = Example()

    def forward(self, x, edge_index):
        return self.model(x, edge_index)


torch.manual_seed(7)
wrapped = train(Wrapper(), seed=7)
torch.save(wrapped.state_dict(), os.path.join(out, "example.pt"))
result["example"] = dict(file=os.path.join(out, "example.pt"), **accuracy(wrapped))

# Not a GNN gnn-soup knows: an extra head layer.
head = Net(spec("gcn")).state_dict()
head["head.weight"] = torch.zeros(7, 7)
torch.save(head, os.path.join(out, "with-head.pt"))
print(json.dumps(result))
