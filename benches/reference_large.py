"""The paper's reference souping code, the way it runs on a large graph, for side-by-side timing
with gnn-soup on the same graph and the same ingredients (scripts/bench-large.sh).

What it does as the reference (`soups.py` + DGL) does, so that its cost is the reference's:
- DGL's layers: `GraphConv(norm="both")` scales by out-degree^-1/2, multiplies by the weight
  first when the layer narrows (in > out), aggregates with a fused sparse product (DGL's gspmm;
  here torch's CSR `mm`), scales by in-degree^-1/2, adds the bias; `SAGEConv("mean")` likewise
  (fc_neigh before the aggregation when it narrows, fc_self, one bias). The GCN graph has its
  self-loops added (`dgl.add_self_loop`), as the reference's arxiv runs do.
- Its dropout placement: GCN drops hidden activations only; GraphSAGE (3+ layers) drops every
  layer's input but the last one's.
- LS/PLS: every ingredient tensor requires a gradient (the reference's AlphaWrapper keeps the
  ingredients as parameters), mixed weights rebuilt per step as sum_i alpha[j, i] * W_i, a
  functional forward in training mode, logits times a learnable beta, cross-entropy on the
  validation nodes, SGD with cosine warm restarts. PLS: METIS parts (pymetis) computed once,
  each epoch the subgraph induced by R of K parts (DGL's node_subgraph), no validation pass.
- GIS: rank by validation accuracy, then G interpolations per ingredient, each a full-graph
  inference pass from `load_state_dict`.

usage: reference_large.py GRAPH.npz INGREDIENT_DIR STRATEGY [--epochs N] [--lr LR] [--t0 T0]
       [--parts K] [--sample R] [--granularity G] [--threads T] [--dropout P]
GRAPH.npz is `gnn-soup data export`'s; the ingredients are gnn-soup checkpoints (GCN or SAGE).
Prints one JSON document: seconds, per-epoch seconds, RSS at the start and peak, val accuracy.
"""
import argparse
import glob
import json
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def read_safetensors(path):
    """Tensors and gnn-soup metadata of a checkpoint (the format is 8 bytes of header length,
    a JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header.pop("__metadata__")["gnn_soup"])
    base = 8 + n
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    tensors = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        arr = np.frombuffer(raw[base + a : base + b], dtype=dtypes[h["dtype"]]).reshape(h["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


class Graph:
    def __init__(self, n, src, dst, x, y, val_mask):
        self.n, self.src, self.dst, self.x, self.y, self.val_mask = n, src, dst, x, y, val_mask
        ones = torch.ones(len(src))
        # A[dst, src]: `adj @ h` sums over in-neighbours (DGL's copy_u + sum).
        self.adj = torch.sparse_coo_tensor(torch.stack([dst, src]), ones, (n, n)).coalesce().to_sparse_csr()
        self.out_norm = torch.bincount(src, minlength=n).clamp(min=1).float().pow(-0.5).unsqueeze(1)
        self.in_deg = torch.bincount(dst, minlength=n).clamp(min=1).float().unsqueeze(1)
        self.in_norm = self.in_deg.pow(-0.5)

    def subgraph(self, nodes):
        """DGL's node_subgraph: the graph induced by the sorted `nodes`."""
        local = torch.full((self.n,), -1, dtype=torch.long)
        local[nodes] = torch.arange(len(nodes))
        ls, ld = local[self.src], local[self.dst]
        keep = (ls >= 0) & (ld >= 0)
        return Graph(len(nodes), ls[keep], ld[keep], self.x[nodes], self.y[nodes], self.val_mask[nodes])


def graph_conv(g, h, weight, bias):
    """DGL GraphConv, norm="both"; weight [in, out]."""
    h = h * g.out_norm
    if weight.shape[0] > weight.shape[1]:
        h = g.adj @ (h @ weight)
    else:
        h = (g.adj @ h) @ weight
    return h * g.in_norm + bias


def sage_conv(g, h, fc_self, fc_neigh, bias):
    """DGL SAGEConv("mean"); fc_* are torch Linear weights [out, in]."""
    if fc_neigh.shape[1] > fc_neigh.shape[0]:
        neigh = (g.adj @ (h @ fc_neigh.t())) / g.in_deg
    else:
        neigh = ((g.adj @ h) / g.in_deg) @ fc_neigh.t()
    return h @ fc_self.t() + neigh + bias


def forward(arch, layers, p, g, dropout, train):
    h = g.x
    for i in range(layers):
        if arch == "gcn":
            if i > 0:
                h = F.dropout(h, dropout, train)
            h = graph_conv(g, h, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"])
        else:
            if i + 1 < layers and layers > 2:
                h = F.dropout(h, dropout, train)
            h = sage_conv(g, h, p[f"layers.{i}.fc_self.weight"], p[f"layers.{i}.fc_neigh.weight"], p[f"layers.{i}.bias"])
        if i + 1 < layers:
            h = F.relu(h)
    return h


def to_dgl(arch, layers, sd):
    """gnn-soup's (PyG) names and shapes to the reference model's."""
    out = {}
    for i in range(layers):
        if arch == "gcn":
            out[f"layers.{i}.weight"] = sd[f"convs.{i}.lin.weight"].t().contiguous()
            out[f"layers.{i}.bias"] = sd[f"convs.{i}.bias"]
        else:
            out[f"layers.{i}.fc_neigh.weight"] = sd[f"convs.{i}.lin_l.weight"]
            out[f"layers.{i}.fc_self.weight"] = sd[f"convs.{i}.lin_r.weight"]
            out[f"layers.{i}.bias"] = sd[f"convs.{i}.lin_l.bias"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("graph")
    ap.add_argument("ingredients")
    ap.add_argument("strategy", choices=["ls", "pls", "gis"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=11.0)
    ap.add_argument("--t0", type=int, default=4)
    ap.add_argument("--parts", type=int, default=32)
    ap.add_argument("--sample", type=int, default=8)
    ap.add_argument("--granularity", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    paths = sorted(glob.glob(os.path.join(a.ingredients, "ingredient-*.safetensors")))
    loaded = [read_safetensors(p) for p in paths]
    spec = loaded[0][1]["arch"]
    arch, layers = spec["arch"], spec["layers"]
    states = [to_dgl(arch, layers, sd) for sd, _ in loaded]

    z = np.load(a.graph)
    x = torch.from_numpy(z["x"])
    n = x.shape[0]
    src, dst = torch.from_numpy(z["edge_index"][0]), torch.from_numpy(z["edge_index"][1])
    if arch == "gcn":  # dgl.add_self_loop
        keep = src != dst
        loops = torch.arange(n)
        src, dst = torch.cat([src[keep], loops]), torch.cat([dst[keep], loops])
    val_mask = torch.zeros(n, dtype=torch.bool)
    val_mask[torch.from_numpy(z["val_idx"])] = True
    g = Graph(n, src, dst, x, torch.from_numpy(z["y"]), val_mask)

    def val_acc(p):
        with torch.no_grad():
            logits = forward(arch, layers, p, g, a.dropout, False)
        return (logits[g.val_mask].argmax(1) == g.y[g.val_mask]).float().mean().item()

    rss_start = rss_bytes()
    started = time.perf_counter()
    epoch_seconds = []
    if a.strategy == "gis":
        vals = [val_acc(s) for s in states]
        order = [i for _, i in sorted(zip(vals, range(len(states))), reverse=True)]
        soup, best = states[order[0]], vals[order[0]]
        for i in order[1:]:
            best, best_sd = -1.0, None
            for alpha in np.linspace(0, 1, a.granularity):
                sd = {k: soup[k].clone() * alpha + states[i][k].clone() * (1 - alpha) for k in soup}
                v = val_acc(sd)
                if v > best:
                    best, best_sd = v, sd
            soup = best_sd
        result_acc = best
    else:
        names = list(states[0].keys())
        params = [{k: s[k].clone().requires_grad_() for k in names} for s in states]
        raw = torch.nn.Parameter(torch.softmax(torch.ones(len(names), len(states)), dim=1))
        beta = torch.nn.Parameter(torch.tensor(1.0))
        opt = torch.optim.SGD([raw, beta], lr=a.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=a.t0)
        parts = None
        if a.strategy == "pls":
            import pymetis

            t = time.perf_counter()
            keep = src != dst
            order = torch.argsort(src[keep], stable=True)
            adjncy = dst[keep][order].numpy()
            xadj = np.concatenate([[0], np.cumsum(np.bincount(src[keep].numpy(), minlength=n))])
            _, membership = pymetis.part_graph(a.parts, xadj=xadj, adjncy=adjncy)
            parts = torch.tensor(membership)
            rng = np.random.default_rng(a.seed)
            metis_seconds = time.perf_counter() - t
            started = time.perf_counter()
        for _ in range(a.epochs):
            t = time.perf_counter()
            sg = g
            if parts is not None:
                chosen = torch.tensor(rng.choice(a.parts, a.sample, replace=False))
                sg = g.subgraph(torch.isin(parts, chosen).nonzero().flatten())
            alpha = torch.softmax(raw, dim=1)
            mixed = {k: sum(p[k] * alpha[j, i] for i, p in enumerate(params)) for j, k in enumerate(names)}
            logits = forward(arch, layers, mixed, sg, a.dropout, True) * beta
            loss = F.cross_entropy(logits[sg.val_mask], sg.y[sg.val_mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            epoch_seconds.append(time.perf_counter() - t)
        alpha = torch.softmax(raw, dim=1).detach()
        result_acc = val_acc({k: sum(p[k].detach() * alpha[j, i] for i, p in enumerate(params)) for j, k in enumerate(names)})
    seconds = time.perf_counter() - started
    out = {
        "strategy": a.strategy,
        "arch": arch,
        "threads": a.threads,
        "seconds": seconds,
        "epoch_seconds": epoch_seconds,
        "rss_start_bytes": rss_start,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "val_acc": result_acc,
    }
    if a.strategy == "pls":
        out["metis_seconds"] = metis_seconds
    print(json.dumps(out))


if __name__ == "__main__":
    main()
