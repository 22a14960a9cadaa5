"""The paper's reference code, re-implemented in plain PyTorch from its published description
(docs/method.md#the-paper-and-its-reference-code) so that gnn-soup can be checked against it
without DGL:

- its models, with DGL's state-dict layout and DGL's layer semantics: `GraphConv(norm="both")`
  (weight [in, out], no self-loops added, degrees clamped at 1) and `SAGEConv("mean")`
  (fc_self, fc_neigh, bias), with the reference's dropout placement;
- its strategies, the way its `soups.py` does them: uniform, GIS (rank by validation accuracy,
  ties to the higher index; interpolate with a = linspace(0, 1, G), first maximum wins), LS
  (softmax mixing of every parameter tensor over the ingredients, a learnable output
  temperature, SGD with cosine warm restarts, the model left in training mode) and PLS (the
  same step on the subgraph of R of K METIS parts, loss on its validation nodes).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call


class Graph:
    """Edges source -> target, as gnn-soup and DGL read them."""

    def __init__(self, x, edge_index, y, train_mask, val_mask, test_mask):
        self.x, self.y = x, y
        self.src, self.dst = edge_index[0], edge_index[1]
        self.n = x.shape[0]
        self.train_mask, self.val_mask, self.test_mask = train_mask, val_mask, test_mask

    def subgraph(self, nodes):
        """The graph induced by `nodes` (a sorted index tensor): DGL's node_subgraph."""
        local = torch.full((self.n,), -1, dtype=torch.long)
        local[nodes] = torch.arange(len(nodes))
        keep = (local[self.src] >= 0) & (local[self.dst] >= 0)
        ei = torch.stack([local[self.src[keep]], local[self.dst[keep]]])
        return Graph(self.x[nodes], ei, self.y[nodes], self.train_mask[nodes], self.val_mask[nodes], self.test_mask[nodes])


def in_neighbour_sum(g, h):
    out = torch.zeros((g.n,) + h.shape[1:], dtype=h.dtype)
    return out.index_add(0, g.dst, h[g.src])


class GraphConv(torch.nn.Module):
    """DGL's GraphConv, norm="both", on the graph as it is."""

    def __init__(self, fin, fout, activation=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(fin, fout))
        self.bias = torch.nn.Parameter(torch.zeros(fout))
        torch.nn.init.xavier_uniform_(self.weight)
        self.activation = activation

    def forward(self, g, h):
        out_deg = torch.bincount(g.src, minlength=g.n).clamp(min=1).float()
        in_deg = torch.bincount(g.dst, minlength=g.n).clamp(min=1).float()
        h = h * out_deg.pow(-0.5).unsqueeze(1)
        h = in_neighbour_sum(g, h @ self.weight) * in_deg.pow(-0.5).unsqueeze(1) + self.bias
        return self.activation(h) if self.activation else h


class SAGEConv(torch.nn.Module):
    """DGL's SAGEConv with the mean aggregator (DGL >= 0.8: one bias after both linears)."""

    def __init__(self, fin, fout, activation=None, feat_drop=0.0):
        super().__init__()
        self.fc_self = torch.nn.Linear(fin, fout, bias=False)
        self.fc_neigh = torch.nn.Linear(fin, fout, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(fout))
        self.activation, self.feat_drop = activation, torch.nn.Dropout(feat_drop)

    def forward(self, g, h):
        h = self.feat_drop(h)
        deg = torch.bincount(g.dst, minlength=g.n).clamp(min=1).float().unsqueeze(1)
        out = self.fc_self(h) + self.fc_neigh(in_neighbour_sum(g, h) / deg) + self.bias
        return self.activation(out) if self.activation else out


class GCN(torch.nn.Module):
    """The reference's GCN: GraphConv layers (ReLU inside all but the last), dropout before every
    layer but the first."""

    def __init__(self, fin, hidden, fout, layers, dropout):
        super().__init__()
        widths = [fin] + [hidden] * (layers - 1) + [fout]
        self.layers = torch.nn.ModuleList(GraphConv(widths[i], widths[i + 1], F.relu if i + 1 < layers else None) for i in range(layers))
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, g, x):
        h = self.layers[0](g, x)
        for layer in self.layers[1:]:
            h = layer(g, self.dropout(h))
        return h


class SAGE(torch.nn.Module):
    """The reference's GraphSAGE: feat_drop on every layer but the last with 3+ layers, none with 2."""

    def __init__(self, fin, hidden, fout, layers, dropout):
        super().__init__()
        widths = [fin] + [hidden] * (layers - 1) + [fout]
        drop = dropout if layers > 2 else 0.0
        self.layers = torch.nn.ModuleList(
            SAGEConv(widths[i], widths[i + 1], F.relu if i + 1 < layers else None, drop if i + 1 < layers else 0.0) for i in range(layers)
        )

    def forward(self, g, x):
        for layer in self.layers:
            x = layer(g, x)
        return x


def edge_softmax(g, e, eids=None):
    """DGL's edge_softmax: a softmax of edge scores [E, H, ...] over each target's in-edges (the
    edges `eids` only, when given)."""
    dst = g.dst if eids is None else g.dst[eids]
    index = dst.view(-1, *([1] * (e.dim() - 1))).expand_as(e)
    top = torch.full((g.n,) + e.shape[1:], float("-inf")).scatter_reduce(0, index, e, "amax", include_self=True)
    ex = (e - top[dst]).exp()
    return ex / torch.zeros((g.n,) + e.shape[1:]).index_add(0, dst, ex)[dst]


def xavier_relu(*tensors):
    gain = torch.nn.init.calculate_gain("relu")
    for t in tensors:
        torch.nn.init.xavier_normal_(t, gain=gain)


class RefGATConv(torch.nn.Module):
    """The reference's GATConv (its models.py, from DGL's ogbn-arxiv GAT example) as its GAT
    builds it: a residual dst_fc (with bias) instead of a bias, attention logits from attn_src_fc
    (and attn_dst_fc), leaky ReLU 0.2, edge softmax on the graph as it is, edge dropout (a
    permutation drops int(E * edge_drop) edges from the softmax) and attention dropout."""

    def __init__(self, fin, fout, heads, attn_drop=0.0, edge_drop=0.0, use_attn_dst=True):
        super().__init__()
        self.heads, self.fout = heads, fout
        self.src_fc = torch.nn.Linear(fin, fout * heads, bias=False)
        self.dst_fc = torch.nn.Linear(fin, fout * heads)
        self.attn_src_fc = torch.nn.Linear(fin, heads, bias=False)
        self.attn_dst_fc = torch.nn.Linear(fin, heads, bias=False) if use_attn_dst else None
        self.attn_drop, self.edge_drop = torch.nn.Dropout(attn_drop), edge_drop
        xavier_relu(self.src_fc.weight, self.dst_fc.weight, self.attn_src_fc.weight)
        if self.attn_dst_fc is not None:
            xavier_relu(self.attn_dst_fc.weight)

    def forward(self, g, h):
        fs = self.src_fc(h).view(-1, self.heads, self.fout)
        fd = self.dst_fc(h).view(-1, self.heads, self.fout)
        e = self.attn_src_fc(h).view(-1, self.heads, 1)[g.src]
        if self.attn_dst_fc is not None:
            e = e + self.attn_dst_fc(h).view(-1, self.heads, 1)[g.dst]
        e = F.leaky_relu(e, 0.2)
        if self.training and self.edge_drop > 0:
            perm = torch.randperm(len(g.src))
            eids = perm[int(len(g.src) * self.edge_drop):]
            a = torch.zeros_like(e)
            a[eids] = self.attn_drop(edge_softmax(g, e[eids], eids))
        else:
            a = self.attn_drop(edge_softmax(g, e))
        rst = torch.zeros(g.n, self.heads, self.fout).index_add(0, g.dst, fs[g.src] * a)
        return rst + fd


class RefGAT(torch.nn.Module):
    """The reference's GAT (its models.GAT, as tools.create_proper_model builds it: ReLU, no
    model-level residual, no edge features): input dropout; per layer its GATConv, heads
    flattened, BatchNorm1d without running statistics, ReLU, dropout; then pred_linear. Its
    node_encoder is defined but never used."""

    def __init__(self, fin, hidden, classes, layers, heads, dropout, input_drop, attn_drop, edge_drop, use_attn_dst):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        self.node_encoder = torch.nn.Linear(fin, hidden)
        for i in range(layers):
            self.convs.append(RefGATConv(heads * hidden if i > 0 else fin, hidden, heads, attn_drop, edge_drop, use_attn_dst))
            self.norms.append(torch.nn.BatchNorm1d(heads * hidden, track_running_stats=False))
        self.pred_linear = torch.nn.Linear(heads * hidden, classes)
        self.input_drop, self.dropout = torch.nn.Dropout(input_drop), torch.nn.Dropout(dropout)

    def forward(self, g, h):
        h = self.input_drop(h)
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(F.relu(norm(conv(g, h).flatten(1, -1))))
        return self.pred_linear(h)


class DglGATConv(torch.nn.Module):
    """DGL's stock GATConv (fc, attn_l, attn_r, a bias per head), on the graph as it is."""

    def __init__(self, fin, fout, heads, feat_drop=0.0, attn_drop=0.0, activation=None):
        super().__init__()
        self.heads, self.fout = heads, fout
        self.fc = torch.nn.Linear(fin, fout * heads, bias=False)
        self.attn_l = torch.nn.Parameter(torch.empty(1, heads, fout))
        self.attn_r = torch.nn.Parameter(torch.empty(1, heads, fout))
        self.bias = torch.nn.Parameter(torch.zeros(heads * fout))
        self.feat_drop, self.attn_drop, self.activation = torch.nn.Dropout(feat_drop), torch.nn.Dropout(attn_drop), activation
        xavier_relu(self.fc.weight, self.attn_l, self.attn_r)

    def forward(self, g, h):
        f = self.fc(self.feat_drop(h)).view(-1, self.heads, self.fout)
        el, er = (f * self.attn_l).sum(-1), (f * self.attn_r).sum(-1)
        a = self.attn_drop(edge_softmax(g, F.leaky_relu(el[g.src] + er[g.dst], 0.2)))
        rst = torch.zeros(g.n, self.heads, self.fout).index_add(0, g.dst, f[g.src] * a.unsqueeze(-1))
        rst = rst + self.bias.view(1, self.heads, self.fout)
        return self.activation(rst) if self.activation else rst


class DglGAT(torch.nn.Module):
    """DGL's GAT example: GATConv layers with ELU inside the hidden ones, heads flattened between
    layers and averaged after the last."""

    def __init__(self, fin, hidden, classes, heads, out_heads, dropout):
        super().__init__()
        self.gat_layers = torch.nn.ModuleList([DglGATConv(fin, hidden, heads, dropout, dropout, F.elu), DglGATConv(hidden * heads, classes, out_heads, dropout, dropout, None)])

    def forward(self, g, h):
        h = self.gat_layers[0](g, h).flatten(1)
        return self.gat_layers[1](g, h).mean(1)


def accuracy(model, g, mask, state=None):
    model.eval()
    with torch.no_grad():
        logits = model(g, g.x) if state is None else functional_call(model, state, (g, g.x))
    return (logits[mask].argmax(1) == g.y[mask]).float().mean().item()


def mix(states, alpha):
    """Parameter j of the soup: sum_i alpha[j, i] * states[i][j]."""
    names = list(states[0].keys())
    return {n: sum(alpha[j, i] * s[n] for i, s in enumerate(states)) for j, n in enumerate(names)}


def uniform(states):
    return {k: sum(s[k] for s in states) / len(states) for k in states[0]}


def gis(model, g, states, granularity=20):
    vals = [accuracy(model, g, g.val_mask, s) for s in states]
    order = [i for _, i in sorted(zip(vals, range(len(states))), reverse=True)]
    soup = states[order[0]]
    for i in order[1:]:
        best, best_sd = -1.0, None
        for a in np.linspace(0, 1, granularity):
            sd = {k: soup[k] * a + states[i][k] * (1 - a) for k in soup}
            v = accuracy(model, g, g.val_mask, sd)
            if v > best:
                best, best_sd = v, sd
        soup = best_sd
    return soup


def learned(model, g, states, epochs, lr, t0, seed, train_mode=True, subgraphs=None):
    """LS (subgraphs None) or PLS (subgraphs(epoch) gives that epoch's graph)."""
    torch.manual_seed(seed)
    p, n = len(states[0]), len(states)
    raw = torch.nn.Parameter(torch.softmax(torch.ones(p, n), dim=1))  # init "ones"
    beta = torch.nn.Parameter(torch.tensor(1.0))
    opt = torch.optim.SGD([raw, beta], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0)
    model.train(train_mode)
    for epoch in range(epochs):
        sg = g if subgraphs is None else subgraphs(epoch)
        logits = functional_call(model, mix(states, torch.softmax(raw, dim=1)), (sg, sg.x)) * beta
        loss = F.cross_entropy(logits[sg.val_mask], sg.y[sg.val_mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return {k: v.detach() for k, v in mix(states, torch.softmax(raw, dim=1)).items()}


def metis_parts(g, k):
    """K METIS parts of the graph (pymetis), as the reference partitions once before PLS."""
    import pymetis

    adjacency = [[] for _ in range(g.n)]
    for s, d in zip(g.src.tolist(), g.dst.tolist()):
        if s != d:
            adjacency[s].append(d)
    _, membership = pymetis.part_graph(k, adjacency=adjacency)
    return torch.tensor(membership)


def pls(model, g, states, epochs, lr, t0, parts, k, r, seed):
    rng = np.random.default_rng(seed)

    def subgraph(_epoch):
        chosen = torch.tensor(rng.choice(k, r, replace=False))
        return g.subgraph(torch.isin(parts, chosen).nonzero().flatten())

    return learned(model, g, states, epochs, lr, t0, seed, True, subgraph)
