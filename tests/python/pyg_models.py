"""The PyG side of gnn-soup's models: the same layout (`convs.<i>`, `bns.<i>`) and forward
(dropout, conv, then batch norm and ReLU between layers), built from PyG's own layers. Used as
the reference in the parity tests and to show that gnn-soup checkpoints load in PyG."""
import json
import os

import torch
import torch.nn.functional as F
from torch_geometric.nn import GATConv, GCNConv, SAGEConv


def planetoid(name, src_dir, work):
    """PyG's own Planetoid dataset (its loader, its processing) read from the `ind.<name>.*` files
    in src_dir, linked into PyG's raw layout under work."""
    from torch_geometric.datasets import Planetoid

    pyg_name = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}[name]
    raw = os.path.join(work, pyg_name, "raw")
    os.makedirs(raw, exist_ok=True)
    for suffix in ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]:
        link = os.path.join(raw, f"ind.{name}.{suffix}")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(src_dir, f"ind.{name}.{suffix}")), link)
    return Planetoid(work, pyg_name)[0]


class Net(torch.nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        arch, layers = spec["arch"], spec["layers"]
        self.convs = torch.nn.ModuleList()
        self.bns = torch.nn.ModuleList()
        width = spec["in_dim"]
        for i in range(layers):
            last = i + 1 == layers
            out = spec["out_dim"] if last else spec["hidden"]
            if arch == "gcn":
                conv, next_width = GCNConv(width, out), out
            elif arch == "sage":
                conv, next_width = SAGEConv(width, out, aggr="mean"), out
            elif arch == "gat":
                heads = 1 if last else spec["heads"]
                conv = GATConv(width, out, heads=heads, concat=not last, dropout=spec["dropout"])
                next_width = out if last else out * heads
            else:
                raise ValueError(arch)
            self.convs.append(conv)
            if spec["batch_norm"] and not last:
                self.bns.append(torch.nn.BatchNorm1d(next_width))
            width = next_width

    def forward(self, x, edge_index):
        if self.spec.get("row_normalize"):
            x = x / x.sum(dim=-1, keepdim=True).clamp(min=1.0)  # T.NormalizeFeatures
        for i, conv in enumerate(self.convs):
            if i not in self.spec.get("input_dropout_off", []):
                x = torch.nn.functional.dropout(x, p=self.spec["dropout"], training=self.training)
            x = conv(x, edge_index)
            if i + 1 < len(self.convs):
                if self.spec["batch_norm"]:
                    x = self.bns[i](x)
                x = x.relu()
        return x


# PyG's example style: layers as attributes conv1/conv2 (a GCN for Cora), the model inside a
# wrapper module, as users' own scripts often have it.
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


def load_checkpoint(path):
    """A gnn-soup checkpoint as a PyG model (strict state-dict load) and its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()["gnn_soup"])
    model = Net(meta["arch"])
    model.load_state_dict(load_file(path), strict=True)
    return model.eval(), meta
