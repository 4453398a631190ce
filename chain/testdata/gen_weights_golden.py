"""Generates weights_golden.json: the Python SDK's convert_weights_and_uids_for_emit rule
(chain.md §6.1) applied with numpy float32 to seeded random vectors. Run: python3 gen_weights_golden.py"""
import json
import random

import numpy as np

U16_MAX = 65535


def convert(uids, weights):
    weights = np.asarray(weights, dtype=np.float32)
    if np.sum(weights) == 0:
        return [], []
    max_weight = float(max(weights))
    weights = [float(value) / max_weight for value in weights]
    out_uids, out_vals = [], []
    for weight_i, uid_i in zip(weights, uids):
        v = round(float(weight_i) * int(U16_MAX))
        if v != 0:
            out_uids.append(int(uid_i))
            out_vals.append(v)
    return out_uids, out_vals


rng = random.Random(97)
cases = []
for n in range(400):
    k = rng.randint(1, 8)
    uids = rng.sample(range(0, 256), k)
    mode = n % 4
    if mode == 0:
        raw = [rng.random() for _ in range(k)]
    elif mode == 1:
        raw = [rng.random() ** 8 for _ in range(k)]  # many tiny weights that round to 0
    elif mode == 2:
        bps = [rng.randint(0, 10000) for _ in range(k)]
        raw = [b / 10000 for b in bps]
    else:
        raw = [rng.choice([0.0, 1e-7, 1e-5, 0.5, 1.0, 0.25, 1 / 3]) for _ in range(k)]
    s = sum(raw)
    weights = [w / s for w in raw] if s > 0 else raw
    ou, ov = convert(uids, weights)
    cases.append({"uids": uids, "weights": [repr(w) for w in weights], "outUids": ou, "outWeights": ov})

with open("weights_golden.json", "w") as f:
    json.dump({"generator": "gen_weights_golden.py", "cases": cases}, f)
    f.write("\n")
