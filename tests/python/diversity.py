"""Independent check of `gnn-soup inspect DIR --diversity`: recomputes, with numpy from the
safetensors files, the L2 distance between two ingredients, the cosine of their updates from the
shared init, and each one's distance from the init. Prints one JSON document."""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def flat(path):
    t = load_file(path)
    return np.concatenate([t[k].astype(np.float64).ravel() for k in sorted(t) if np.issubdtype(t[k].dtype, np.floating)])


init, a, b = (flat(p) for p in sys.argv[1:4])
ua, ub = a - init, b - init
print(json.dumps({
    "distance": float(np.linalg.norm(a - b)),
    "cosine": float(ua @ ub / (np.linalg.norm(ua) * np.linalg.norm(ub))),
    "from_init": [float(np.linalg.norm(ua)), float(np.linalg.norm(ub))],
    "norm": [float(np.linalg.norm(a)), float(np.linalg.norm(b))],
}))
