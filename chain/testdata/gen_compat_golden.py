"""Generates compat_golden.json: CPython's bytes.decode("utf-8", errors="ignore") on seeded random
byte strings, and json.dumps(..., sort_keys=True, separators=(",", ":")) on random objects.
Run: python3 gen_compat_golden.py"""
import json
import random

rng = random.Random(9797)
INTERESTING = [0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x8F, 0x90, 0x7C]

utf8 = []
for n in range(600):
    k = rng.randint(0, 24)
    if n % 3 == 0:
        b = bytes(rng.randint(0, 255) for _ in range(k))
    elif n % 3 == 1:
        b = bytes(rng.choice(INTERESTING) for _ in range(k))
    else:
        s = "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xD7FF), rng.randint(0xE000, 0xFFFF), rng.randint(0x10000, 0x10FFFF)])) for _ in range(k // 2))
        raw = bytearray(s.encode("utf-8"))
        for _ in range(rng.randint(0, 3)):  # corrupt a few bytes / truncate
            if raw:
                raw[rng.randrange(len(raw))] = rng.choice(INTERESTING)
        if raw and rng.random() < 0.3:
            raw = raw[: rng.randrange(len(raw))]
        b = bytes(raw)
    utf8.append({"hex": b.hex(), "decoded": b.decode("utf-8", errors="ignore")})


def rand_str():
    return "".join(chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xFFFF), rng.randint(0x10000, 0x10FFFF)]))
                   for _ in range(rng.randint(0, 6))
                   if True).replace("\ud800", "")


def rand_value(depth=0):
    r = rng.random()
    if depth > 2 or r < 0.4:
        return rng.choice([rand_str(), rng.randint(-10**12, 10**12), True, False, None])
    if r < 0.7:
        return [rand_value(depth + 1) for _ in range(rng.randint(0, 4))]
    return {rand_str(): rand_value(depth + 1) for _ in range(rng.randint(0, 4))}


canon = []
for n in range(300):
    v = rand_value()
    try:
        s = json.dumps(v, sort_keys=True, separators=(",", ":"))
    except (UnicodeEncodeError, ValueError):
        continue
    # `value` is carried with ensure_ascii so lone surrogates survive the file round trip
    canon.append({"value": v, "canonical": s})

with open("compat_golden.json", "w", encoding="ascii") as f:
    json.dump({"generator": "gen_compat_golden.py", "utf8": utf8, "canonical": canon}, f)
    f.write("\n")
