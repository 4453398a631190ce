/**
 * Synthetic models for dedup tests, calibration and the benchmark: full float32 tensors from a
 * seeded PRNG, with the 16-sample fingerprint (§8) and the 256-sample divergence samples (§9.2) taken
 * at the spec's BLAKE2b-512 positions from the same weights. Independent of the production
 * fingerprint engine on purpose (that one is being written elsewhere).
 */
import { createHash } from 'node:crypto';
import { DIVERGENCE_CORPUS_SALT, DIVERGENCE_SAMPLES, type DivergenceSamples, FINGERPRINT_METHOD, FINGERPRINT_SAMPLES, type LayerFingerprint } from '../fingerprint-types.ts';

export type Random = () => number;

/** Standard normal from a uniform PRNG (Box–Muller). */
export function gaussian(random: Random): number {
  return Math.sqrt(-2 * Math.log(Math.max(random(), 1e-300))) * Math.cos(2 * Math.PI * random());
}

/** A model: tensor name → values. */
export type SyntheticModel = ReadonlyMap<string, Float32Array>;

function u32s(digest: Buffer, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < 16; i++) out.push(n === 0 ? 0 : digest.readUInt32BE(4 * i) % n);
  return out;
}

/** §8 step 3 positions (16). */
export function fingerprintPositions(key: string, n: number): number[] {
  return u32s(createHash('blake2b512').update(Buffer.from(key, 'utf8')).digest(), n);
}

/** §9.2 positions (256): 16 digests of `key:salt:j`. */
export function divergencePositions(key: string, salt: string, n: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < 16; j++) out.push(...u32s(createHash('blake2b512').update(Buffer.from(`${key}:${salt}:${j}`, 'utf8')).digest(), n));
  return out;
}

/** A base model of `tensors` tensors with `elements` values each, with per-tensor scales. */
export function baseModel(random: Random, tensors: number, elements: number): SyntheticModel {
  const model = new Map<string, Float32Array>();
  for (let t = 0; t < tensors; t++) {
    const scale = 0.01 + 0.1 * random();
    const values = new Float32Array(elements);
    for (let i = 0; i < elements; i++) values[i] = scale * gaussian(random);
    model.set(`model.layers.${String(t).padStart(4, '0')}.weight`, values);
  }
  return model;
}

function rms(values: Float32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  return Math.sqrt(s / Math.max(1, values.length));
}

/**
 * Adds independent Gaussian noise of `relative` × the tensor's RMS to a `fraction` of the tensors
 * (the first ⌈fraction·T⌉ in a seeded shuffle). fraction 1 = a fine-tune-like change everywhere.
 */
export function perturb(model: SyntheticModel, random: Random, relative: number, fraction = 1): SyntheticModel {
  const keys = [...model.keys()];
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  const chosen = new Set(keys.slice(0, Math.ceil(fraction * keys.length)));
  const out = new Map<string, Float32Array>();
  for (const [key, values] of model) {
    if (!chosen.has(key)) {
      out.set(key, values);
      continue;
    }
    const sigma = relative * rms(values);
    const next = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) next[i] = values[i]! + sigma * gaussian(random);
    out.set(key, next);
  }
  return out;
}

function sortedKeys(model: SyntheticModel): string[] {
  return [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The §8 fingerprint (sequential norm: synthetic data, not the pairwise order of the engine). */
export function fingerprintOf(model: SyntheticModel): LayerFingerprint {
  const keys = sortedKeys(model);
  return {
    method: FINGERPRINT_METHOD,
    layer_keys: keys,
    norm_vector: keys.map((k) => {
      const v = model.get(k)!;
      let s = 0;
      for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
      return Math.sqrt(s);
    }),
    tensor_samples: keys.map((k) => {
      const v = model.get(k)!;
      const positions = fingerprintPositions(k, v.length);
      expectLength(positions, FINGERPRINT_SAMPLES);
      return positions.map((p) => (v.length === 0 ? 0 : v[p]!));
    }),
  };
}

function expectLength(a: readonly number[], n: number): void {
  if (a.length !== n) throw new Error(`expected ${n} positions`);
}

/** §9.2 samples under `salt`. */
export function samplesOf(model: SyntheticModel, salt: string = DIVERGENCE_CORPUS_SALT): DivergenceSamples {
  const keys = sortedKeys(model);
  const values = new Float32Array(keys.length * DIVERGENCE_SAMPLES);
  keys.forEach((k, t) => {
    const v = model.get(k)!;
    divergencePositions(k, salt, v.length).forEach((p, i) => {
      values[t * DIVERGENCE_SAMPLES + i] = v.length === 0 ? 0 : v[p]!;
    });
  });
  return { salt, keys, values };
}
