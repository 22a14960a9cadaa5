"""A zoo of the models users bring, for tests/zoo.rs: each trained briefly on PyG's Cora (raw
features) from one shared initialisation and saved as its own code saves it, with what Python
computes on it (eval-mode outputs and accuracies) to hold gnn-soup's import to.

- ogb-arxiv-gcn: OGB's ogbn-arxiv GCN example (GCNConv + BatchNorm1d + ReLU + dropout, log_softmax);
- ogb-products-sage: OGB's ogbn-products GraphSAGE example (SAGEConv, ReLU, dropout, log_softmax);
- pyg-gat-bn: PyG GATConv layers with batch norm and ELU, the last averaging 2 heads;
- ref-gcn, ref-sage, ref-gat: the paper's reference models (DGL layout and semantics,
  reference_soups.py), the GAT being its own models.GAT;
- dgl-gat: a stack of DGL's stock GATConv as DGL's GAT example builds it (ELU, last heads averaged).

usage: zoo.py make OUT_DIR PLANETOID_DIR        (prints the zoo as JSON)
       zoo.py check NAME FILE PLANETOID_DIR WORK  (accuracy of an exported state dict in NAME's model)"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

import reference_soups as ref
from pyg_models import planetoid


class OgbGCN(torch.nn.Module):
    """OGB's examples/nodeproppred/arxiv/gnn.py GCN."""

    def __init__(self, fin, hidden, fout, layers, dropout):
        super().__init__()
        self.convs = torch.nn.ModuleList([GCNConv(fin, hidden)] + [GCNConv(hidden, hidden) for _ in range(layers - 2)] + [GCNConv(hidden, fout)])
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm1d(hidden) for _ in range(layers - 1)])
        self.dropout = dropout

    def forward(self, x, edge_index):
        for conv, bn in zip(self.convs[:-1], self.bns):
            x = F.dropout(F.relu(bn(conv(x, edge_index))), p=self.dropout, training=self.training)
        return self.convs[-1](x, edge_index).log_softmax(dim=-1)


class OgbSAGE(torch.nn.Module):
    """OGB's examples/nodeproppred/products/gnn.py SAGE (full-batch)."""

    def __init__(self, fin, hidden, fout, layers, dropout):
        super().__init__()
        self.convs = torch.nn.ModuleList([SAGEConv(fin, hidden)] + [SAGEConv(hidden, hidden) for _ in range(layers - 2)] + [SAGEConv(hidden, fout)])
        self.dropout = dropout

    def forward(self, x, edge_index):
        for conv in self.convs[:-1]:
            x = F.dropout(F.relu(conv(x, edge_index)), p=self.dropout, training=self.training)
        return self.convs[-1](x, edge_index).log_softmax(dim=-1)


class PygGATBN(torch.nn.Module):
    """PyG GATConv with batch norm and ELU between layers; the last layer averages 2 heads."""

    def __init__(self, fin, hidden, fout, heads, dropout, attention_dropout):
        super().__init__()
        self.convs = torch.nn.ModuleList([GATConv(fin, hidden, heads=heads, dropout=attention_dropout), GATConv(hidden * heads, fout, heads=2, concat=False, dropout=attention_dropout)])
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm1d(hidden * heads)])
        self.dropout = dropout

    def forward(self, x, edge_index):
        x = F.dropout(F.elu(self.bns[0](self.convs[0](x, edge_index))), p=self.dropout, training=self.training)
        return self.convs[1](x, edge_index)


# name: (constructor, PyG-style inputs (x, edge_index) or the reference's (graph, x), the flags
# that tell `gnn-soup import` what the state dict cannot, outputs are log-probabilities)
MODELS = {
    "ogb-arxiv-gcn": (lambda: OgbGCN(1433, 64, 7, 3, 0.5), "pyg", ["--dropout", "0.5", "--input-dropout-off", "0"], True),
    "ogb-products-sage": (lambda: OgbSAGE(1433, 64, 7, 3, 0.5), "pyg", ["--dropout", "0.5", "--input-dropout-off", "0"], True),
    "pyg-gat-bn": (lambda: PygGATBN(1433, 8, 7, 4, 0.5, 0.3), "pyg", ["--dropout", "0.5", "--attention-dropout", "0.3", "--activation", "elu", "--input-dropout-off", "0"], False),
    "ref-gcn": (lambda: ref.GCN(1433, 16, 7, 2, 0.5), "ref", [], False),
    "ref-sage": (lambda: ref.SAGE(1433, 16, 7, 3, 0.5), "ref", [], False),
    "ref-gat": (lambda: ref.RefGAT(1433, 8, 7, 2, 4, 0.5, 0.1, 0.1, 0.1, True), "ref", ["--dropout", "0.5", "--input-dropout", "0.1", "--attention-dropout", "0.1", "--edge-dropout", "0.1"], False),
    "dgl-gat": (lambda: ref.DglGAT(1433, 8, 7, 4, 2, 0.5), "ref", ["--dropout", "0.5"], False),
}


def cora(planetoid_dir, work):
    data = planetoid("cora", planetoid_dir, work)
    g = ref.Graph(data.x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)
    return data, g


def outputs(name, model, data, g):
    model.eval()
    with torch.no_grad():
        return model(data.x, data.edge_index) if MODELS[name][1] == "pyg" else model(g, g.x)


def accuracy(name, model, data, g):
    pred = outputs(name, model, data, g).argmax(1)
    acc = lambda mask: (pred[mask] == data.y[mask]).float().mean().item()
    return {"val_acc": acc(data.val_mask), "test_acc": acc(data.test_mask)}


def train(name, model, data, g, seed, epochs=40):
    inputs = (data.x, data.edge_index) if MODELS[name][1] == "pyg" else (g, g.x)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(*inputs)
        loss = (F.nll_loss if MODELS[name][3] else F.cross_entropy)(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
    return model


def make(out, planetoid_dir, ingredients=3):
    data, g = cora(planetoid_dir, os.path.join(out, "pyg"))
    zoo = {}
    for k, (name, (build, _, flags, log_probs)) in enumerate(MODELS.items()):
        folder = os.path.join(out, name)
        os.makedirs(folder)
        torch.manual_seed(100 + k)
        init = build()
        torch.save(init.state_dict(), os.path.join(folder, "init.pt"))
        made, logits = [], {}
        for i in range(ingredients):
            model = build()
            model.load_state_dict(init.state_dict())
            train(name, model, data, g, seed=10 * k + i)
            path = os.path.join(folder, f"ingredient_{i}.pt")
            torch.save(model.state_dict(), path)
            made.append(dict(file=path, **accuracy(name, model, data, g)))
            logits[str(i)] = outputs(name, model, data, g).contiguous()
        save_file(logits, os.path.join(folder, "outputs.safetensors"))
        zoo[name] = dict(init=os.path.join(folder, "init.pt"), ingredients=made, flags=flags, log_probs=log_probs, outputs=os.path.join(folder, "outputs.safetensors"))

    # The paper's GAT, 10 ingredients from one init, and the reference's own strategies on them:
    # uniform, GIS, and LS with dropout off (so that the two LS runs are comparable step by step).
    build = MODELS["ref-gat"][0]
    folder = os.path.join(out, "ref-gat-10")
    os.makedirs(folder)
    torch.manual_seed(7)
    init = build()
    torch.save(init.state_dict(), os.path.join(folder, "initial_model.pt"))
    states = []
    for i in range(10):
        model = build()
        model.load_state_dict(init.state_dict())
        train("ref-gat", model, data, g, seed=200 + i)
        torch.save(model.state_dict(), os.path.join(folder, f"ingredient_{i}.pt"))
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    judge = build()
    soups = {
        "uniform": ref.uniform(states),
        "gis": ref.gis(judge, g, states, granularity=20),
        "ls": ref.learned(build(), g, states, epochs=30, lr=10.0, t0=4, seed=0, train_mode=False),
    }
    zoo["ref-gat-10"] = dict(
        folder=folder,
        soups={k: {"val_acc": ref.accuracy(judge, g, g.val_mask, s), "test_acc": ref.accuracy(judge, g, g.test_mask, s)} for k, s in soups.items()},
        ingredients=[{"val_acc": ref.accuracy(judge, g, g.val_mask, s), "test_acc": ref.accuracy(judge, g, g.test_mask, s)} for s in states],
    )
    print(json.dumps(zoo))


def check(name, path, planetoid_dir, work):
    """Loads an exported state dict (strictly) into NAME's model and prints its accuracy."""
    data, g = cora(planetoid_dir, work)
    model = MODELS[name][0]()
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path)
    model.load_state_dict(state, strict=True)
    print(json.dumps(accuracy(name, model, data, g)))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*sys.argv[2:4])
    elif sys.argv[1] == "check":
        check(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
