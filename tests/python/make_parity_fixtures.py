"""Builds PyG models with fixed random weights on a small directed graph and writes inputs,
weights and eval-mode outputs to one safetensors file, for tests/pyg_parity.rs.

usage: make_parity_fixtures.py OUT.safetensors"""
import json
import sys

import torch
from safetensors.torch import save_file

from pyg_models import Net

torch.manual_seed(0)
N, F, C = 40, 12, 5
# Directed edges without duplicates or self-loops, so direction handling is tested too.
pairs = set()
while len(pairs) < 150:
    s, d = torch.randint(0, N, (2,)).tolist()
    if s != d:
        pairs.add((s, d))
pairs = sorted(pairs)
edge_index = torch.tensor(pairs, dtype=torch.long).t().contiguous()
x = torch.randn(N, F).abs()  # non-negative, so row normalisation is meaningful

tensors = {"x": x, "src": edge_index[0].clone(), "dst": edge_index[1].clone()}
cases = {}
for arch in ["gcn", "sage", "gat"]:
    for bn in [False, True]:
        # batch-norm cases also check the row normalisation of (non-negative) inputs
        spec = dict(arch=arch, in_dim=F, hidden=6, out_dim=C, layers=3, heads=3, dropout=0.5, batch_norm=bn, row_normalize=bn)
        model = Net(spec)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.randn_like(p) * 0.5)  # biases too, unlike PyG's zero init
            for bnm in model.bns:
                bnm.running_mean.copy_(torch.randn_like(bnm.running_mean))
                bnm.running_var.copy_(torch.rand_like(bnm.running_var) + 0.5)
                bnm.num_batches_tracked.fill_(7)
        model.eval()
        with torch.no_grad():
            out = model(x, edge_index)
        case = f"{arch}{'_bn' if bn else ''}"
        cases[case] = spec
        for k, v in model.state_dict().items():
            tensors[f"{case}/{k}"] = v.contiguous()
        tensors[f"{case}/__logits"] = out.contiguous()

save_file(tensors, sys.argv[1], metadata={"cases": json.dumps(cases)})
print(f"wrote {len(cases)} cases to {sys.argv[1]}")
