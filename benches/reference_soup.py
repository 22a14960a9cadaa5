"""The reference Python approach to souping, for side-by-side timing with gnn-soup on the same
ingredients and data: GIS and LS written the way the paper's public code does them (PyG models,
`load_state_dict` per interpolation point, ingredient tensors with `requires_grad_()`, mixed
weights rebuilt per step), on PyG's own Planetoid loader.

usage: reference_soup.py INGREDIENT_DIR PLANETOID_DIR WORK_DIR LS_EPOCHS LS_LR T0 REPEATS
prints one JSON document: {"gis": [seconds...], "ls": [seconds...], "gis_val": .., "ls_val": ..}
"""
import glob
import json
import os
import sys
import time

import numpy as np
import torch
from torch.func import functional_call

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from pyg_models import load_checkpoint, planetoid  # noqa: E402

ing_dir, planetoid_dir, work, ls_epochs, ls_lr, t0, repeats = sys.argv[1:8]
ls_epochs, ls_lr, t0, repeats = int(ls_epochs), float(ls_lr), int(t0), int(repeats)
torch.set_num_threads(torch.get_num_threads())

data = planetoid("cora", planetoid_dir, work)
paths = sorted(p for p in glob.glob(os.path.join(ing_dir, "ingredient-*.safetensors")))
loaded = [load_checkpoint(p) for p in paths]
model = loaded[0][0]
states = [m.state_dict() for m, _ in loaded]


def validate(m):
    m.eval()
    with torch.no_grad():
        pred = m(data.x, data.edge_index).argmax(1)
    return (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()


def gis(granularity=20):
    vals = []
    for sd in states:
        model.load_state_dict(sd)
        vals.append(validate(model))
    order = [i for _, i in sorted(zip(vals, range(len(vals))), reverse=True)]
    soup = states[order[0]]
    best = vals[order[0]]
    for i in order[1:]:
        max_val, loc = -1, -1
        for a in np.linspace(0, 1, granularity):
            sd = {k: soup[k].clone() * a + states[i][k].clone() * (1 - a) for k in soup}
            model.load_state_dict(sd)
            v = validate(model)
            if v > max_val:
                max_val, loc = v, a
        soup = {k: soup[k].clone() * loc + states[i][k].clone() * (1 - loc) for k in soup}
        best = max_val
    return best


def ls():
    names = list(states[0].keys())
    trainable = [n for n in names if "running" not in n and "num_batches" not in n]
    params = [tuple(states[j][n].detach().clone().requires_grad_() for n in trainable) for j in range(len(states))]
    alpha_raw = torch.nn.Parameter(torch.softmax(torch.ones(len(trainable), len(states)), dim=1))
    beta = torch.nn.Parameter(torch.tensor(1.0))
    opt = torch.optim.SGD([alpha_raw, beta], lr=ls_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0)
    crit = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(ls_epochs):
        opt.zero_grad()
        alpha = torch.softmax(alpha_raw, dim=1)
        mixed = {n: sum(p[k] * alpha[k, j] for j, p in enumerate(params)) for k, n in enumerate(trainable)}
        out = functional_call(model, mixed, (data.x, data.edge_index)) * beta
        loss = crit(out[data.val_mask], data.y[data.val_mask])
        loss.backward()
        opt.step()
        sched.step()
    alpha = torch.softmax(alpha_raw, dim=1).detach()
    mixed = {n: sum(p[k].detach() * alpha[k, j] for j, p in enumerate(params)) for k, n in enumerate(trainable)}
    model.load_state_dict({**states[0], **mixed})
    return validate(model)


result = {"gis": [], "ls": []}
for _ in range(repeats):
    t = time.perf_counter()
    result["gis_val"] = gis()
    result["gis"].append(time.perf_counter() - t)
    t = time.perf_counter()
    result["ls_val"] = ls()
    result["ls"].append(time.perf_counter() - t)
print(json.dumps(result))
