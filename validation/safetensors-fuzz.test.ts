import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.ts';
import { runLocalModelChecks } from './checks.ts';
import { parseSafetensorsHeader, readHeaderLength } from './safetensors.ts';
import { encodeSafetensors, encodeSafetensorsRaw, createSyntheticModel } from './synthetic-model.ts';

/**
 * Issue #5 acceptance: ≥ 10,000 mutated safetensors headers (huge declared lengths, overlapping or
 * out-of-range offsets, bad JSON, wrong dtypes, hostile shapes) each get a clean fault — never a
 * throw, never a read beyond the header cap.
 */

const CAP = 4096;
const CASES = 10_000;

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);

function baseTensors(rng: Rng) {
  const n = 1 + int(rng, 5);
  return Array.from({ length: n }, (_, i) => {
    const shape = [1 + int(rng, 6), 1 + int(rng, 6)];
    return { name: `layers.${i}.weight`, dtype: 'BF16', shape, data: new Uint8Array(shape[0]! * shape[1]! * 2) };
  });
}

const HOSTILE_VALUES: readonly unknown[] = [
  -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, '7', null, true, [], {}, [1, 2, 3], 2 ** 53, 'BF16', [[1]], [-1, 2],
];

/** One mutation of a valid header object (or of its bytes); returns the shard bytes. */
function mutate(rng: Rng): { bytes: Uint8Array; kind: string } {
  const tensors = baseTensors(rng);
  const valid = encodeSafetensors(tensors);
  const n = Number(new DataView(valid.buffer).getBigUint64(0, true));
  const headerText = new TextDecoder().decode(valid.subarray(8, 8 + n));
  const data = valid.subarray(8 + n);
  const header = JSON.parse(headerText) as Record<string, { dtype: unknown; shape: unknown; data_offsets: unknown } | unknown>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const victim = header[pick(rng, names)] as Record<string, unknown>;
  const kind = pick(rng, ['length', 'overlap', 'range', 'json', 'dtype', 'shape', 'offsets', 'nesting', 'top', 'metadata', 'bytes', 'utf8', 'truncate'] as const);
  switch (kind) {
    case 'length': {
      const lengths = [0n, 1n, BigInt(CAP + 1), 2n ** 63n, 2n ** 64n - 1n, BigInt(n + 1 + int(rng, 1000)), BigInt(Math.max(0, n - 1 - int(rng, n)))];
      return { bytes: encodeSafetensorsRaw(headerText, data, pick(rng, lengths)), kind };
    }
    case 'overlap': {
      const offs = victim.data_offsets as [number, number];
      const d = 1 + int(rng, 8);
      victim.data_offsets = [Math.max(0, offs[0] - d), offs[1] - d];
      break;
    }
    case 'range': {
      const offs = victim.data_offsets as [number, number];
      victim.data_offsets = [offs[0], offs[1] + 1 + int(rng, 1 << 20)];
      break;
    }
    case 'json':
      return { bytes: encodeSafetensorsRaw(headerText.slice(0, int(rng, headerText.length)) + pick(rng, ['', '}', ',', ']', '{"a":', '\u0000']), data), kind };
    case 'dtype':
      victim.dtype = pick(rng, ['F32', 'F64', 'I8', 'U8', 'F8_E4M3', 'BOOL', 'Q4_K', '', 'bf16', 7, null, ['BF16']]);
      break;
    case 'shape':
      victim.shape = pick(rng, [[-1, 2], [2 ** 40, 2 ** 40], [1.5], 'x', null, [], [0], Array(10_000).fill(1), [2 ** 53, 2], [[1]]]);
      break;
    case 'offsets':
      victim.data_offsets = pick(rng, HOSTILE_VALUES);
      break;
    case 'nesting': {
      const depth = pick(rng, [100, 10_000, 200_000]);
      return { bytes: encodeSafetensorsRaw(`{"__metadata__":${'['.repeat(depth)}${']'.repeat(depth)}}`, data), kind };
    }
    case 'top':
      return { bytes: encodeSafetensorsRaw(JSON.stringify(pick(rng, [[], 1, 'x', null, true, [header]])), data), kind };
    case 'metadata':
      header.__metadata__ = pick(rng, [{ a: 1 }, [], 'x', { a: { b: 'c' } }, null]);
      break;
    case 'bytes': {
      const bytes = new TextEncoder().encode(headerText);
      for (let i = 0; i < 1 + int(rng, 4); i++) bytes[int(rng, bytes.length)] = int(rng, 256);
      return { bytes: encodeSafetensorsRaw(bytes, data), kind };
    }
    case 'utf8': {
      const bytes = new TextEncoder().encode(headerText);
      bytes[int(rng, bytes.length)] = pick(rng, [0x80, 0xc0, 0xff, 0xfe]);
      return { bytes: encodeSafetensorsRaw(bytes, data), kind };
    }
    case 'truncate': {
      const whole = encodeSafetensorsRaw(headerText, data);
      return { bytes: whole.subarray(0, int(rng, whole.length)), kind };
    }
  }
  return { bytes: encodeSafetensorsRaw(JSON.stringify(header), data), kind };
}

/** The preflight path of validation/checks.ts on bytes in memory: length, cap, then parse. */
function preflight(bytes: Uint8Array): { ok: boolean; message?: string; read: number } {
  const len = readHeaderLength('model.safetensors', bytes.subarray(0, 8), CAP, bytes.length);
  if (!len.ok) return { ok: false, message: len.message, read: 8 };
  const parsed = parseSafetensorsHeader('model.safetensors', bytes.subarray(8, 8 + len.value), bytes.length);
  return parsed.ok ? { ok: true, read: 8 + len.value } : { ok: false, message: parsed.message, read: 8 + len.value };
}

describe('safetensors header fuzz (issue #5)', () => {
  it(`${CASES} mutated headers: a clean fault or a valid parse, never a throw, never a read beyond the cap`, () => {
    const rng = mulberry32(0x5afe);
    const kinds = new Map<string, { faults: number; valid: number }>();
    for (let i = 0; i < CASES; i++) {
      const { bytes, kind } = mutate(rng);
      let r: ReturnType<typeof preflight>;
      try {
        r = preflight(bytes);
      } catch (error) {
        throw new Error(`case ${i} (${kind}) threw: ${(error as Error).message}`);
      }
      expect(r.read).toBeLessThanOrEqual(8 + CAP);
      if (!r.ok) expect(r.message).toMatch(/^shard model\.safetensors: /);
      const k = kinds.get(kind) ?? { faults: 0, valid: 0 };
      if (r.ok) k.valid++;
      else k.faults++;
      kinds.set(kind, k);
    }
    // Every mutation family ran, and the families that always break a header were always caught.
    expect(kinds.size).toBe(13);
    for (const kind of ['overlap', 'range', 'top', 'metadata', 'nesting', 'utf8']) expect(kinds.get(kind)?.valid, kind).toBe(0);
  });
});

describe('hostile shards through the checks the validator and `albedo check-model` run', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'albedo-fuzz-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('400 mutated single-shard models: every one ends in a MINER header/dtype/index fault or VALID, never an INFRA fault or a throw', async () => {
    const rng = mulberry32(0xbad5eed);
    const model = await createSyntheticModel(join(root, 'model'), { shards: 1 });
    const codes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const { bytes } = mutate(rng);
      await writeFile(join(model.dir, 'model.safetensors'), bytes);
      const report = await runLocalModelChecks(model.dir, { maxHeaderBytes: CAP }, new AbortController().signal);
      const code = report.fault ? `${report.fault.faultClass}:${report.fault.code}` : 'VALID';
      codes.set(code, (codes.get(code) ?? 0) + 1);
      expect(['MINER_FAULT:safetensors_header', 'MINER_FAULT:weight_dtype', 'MINER_FAULT:safetensors_index', 'VALID']).toContain(code);
    }
    expect(codes.get('MINER_FAULT:safetensors_header') ?? 0).toBeGreaterThan(200);
  });
});
