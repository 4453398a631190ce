#!/usr/bin/env python3
"""NumPy reference for `npm run bench -- fingerprint`: per-tensor L2 norms of bf16 tensors exactly
as the upstream fingerprint computes them (np.square(x.astype(float64)).sum(), pairwise order).

Usage: fingerprint_ref.py < plan   (plan lines: "path<TAB>file_offset<TAB>n_elements")
Output: one float.hex() norm per line in plan order; "seconds S" on stderr (read + norm work only).
Reads each tensor with readinto() into a reused buffer, as a careful NumPy user would.
"""
import math
import sys
import time

import numpy as np


def main():
    plan = []
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 3:
            plan.append((parts[0], int(parts[1]), int(parts[2])))
    biggest = max((n for _, _, n in plan), default=0)
    buf = np.empty(biggest, dtype="<u2")
    handles = {}
    norms = []
    t0 = time.perf_counter()
    for path, offset, n in plan:
        f = handles.get(path)
        if f is None:
            f = handles[path] = open(path, "rb", buffering=0)
        f.seek(offset)
        view = memoryview(buf[:n]).cast("B")
        got = 0
        while got < 2 * n:
            r = f.readinto(view[got:])
            if not r:
                raise SystemExit(f"short read in {path}")
            got += r
        x = (buf[:n].astype(np.uint32) << 16).view(np.float32)
        s = np.square(x.astype(np.float64)).sum()
        norms.append(math.sqrt(float(s)))
    elapsed = time.perf_counter() - t0
    sys.stdout.write("".join(f"{v.hex()}\n" for v in norms))
    sys.stderr.write(f"seconds {elapsed:.6f}\n")


if __name__ == "__main__":
    main()
