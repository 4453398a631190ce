import { describe, expect, it } from 'vitest';
import { DIVERGENCE_SAMPLES, FINGERPRINT_METHOD, type LayerFingerprint } from '../fingerprint-types.ts';
import { cosine, divergence, median, NO_COMMON_TENSORS_DIVERGENCE, similarity } from './similarity.ts';

function fp(keys: string[], norms: number[], samples: number[][]): LayerFingerprint {
  return { method: FINGERPRINT_METHOD, layer_keys: keys, norm_vector: norms, tensor_samples: samples };
}

function samples(salt: string, rows: Record<string, number[]>) {
  const keys = Object.keys(rows);
  const values = new Float32Array(keys.length * DIVERGENCE_SAMPLES);
  keys.forEach((k, t) => {
    values.set(rows[k]!, t * DIVERGENCE_SAMPLES);
  });
  return { salt, keys, values };
}

describe('cosine (§8)', () => {
  it('is 0.0 on length mismatch, empty input and zero denominator', () => {
    expect(cosine([1, 2], [1])).toBe(0);
    expect(cosine([], [])).toBe(0);
    expect(cosine([0, 0], [1, 2])).toBe(0);
  });
  it('uses sequential left-to-right float64 sums', () => {
    const x = [1e16, 1, -1e16, 3];
    const y = [1, 1, 1, 1];
    let dot = 0;
    let xx = 0;
    let yy = 0;
    for (let i = 0; i < 4; i++) {
      dot += x[i]! * y[i]!;
      xx += x[i]! * x[i]!;
      yy += y[i]! * y[i]!;
    }
    expect(cosine(x, y)).toBe(dot / (Math.sqrt(xx) * Math.sqrt(yy)));
    expect(cosine([3, 4], [3, 4])).toBe(1);
  });
});

describe('similarity (§8)', () => {
  const s16 = (base: number) => Array.from({ length: 16 }, (_, i) => base + i);
  it('is 0.0 when layer_keys differ (list equality, order matters)', () => {
    expect(similarity(fp(['a', 'b'], [1, 1], [s16(1), s16(2)]), fp(['b', 'a'], [1, 1], [s16(1), s16(2)]))).toBe(0);
  });
  it('counts unchanged tensors: equal samples, all-zero pairs, cosine >= 1 - 1e-6', () => {
    const zero = new Array(16).fill(0);
    const a = fp(['a', 'b', 'c', 'd'], [1, 1, 1, 1], [s16(1), zero, s16(5), s16(9)]);
    const scaled = s16(5).map((v) => v * 7); // cosine is scale-invariant: counts as unchanged
    const changed = s16(9).map((v, i) => (i === 0 ? v + 5 : v));
    const b = fp(['a', 'b', 'c', 'd'], [1, 1, 1, 1], [s16(1), zero, scaled, changed]);
    expect(similarity(a, b)).toBe(0.75);
  });
  it('an all-zero vector against a non-zero one is changed (cosine 0)', () => {
    const zero = new Array(16).fill(0);
    expect(similarity(fp(['a'], [1], [zero]), fp(['a'], [1], [s16(1)]))).toBe(0);
  });
  it('falls back to the norm-vector cosine when samples are missing or of different length', () => {
    expect(similarity(fp(['a', 'b'], [3, 4], []), fp(['a', 'b'], [4, 3], []))).toBe(cosine([3, 4], [4, 3]));
    expect(similarity(fp(['a', 'b'], [3, 4], [s16(1)]), fp(['a', 'b'], [3, 4], [s16(1), s16(2)]))).toBe(1);
  });
});

describe('divergence (§9.2)', () => {
  const ones = new Array(DIVERGENCE_SAMPLES).fill(1);
  const twos = new Array(DIVERGENCE_SAMPLES).fill(2);
  const zeros = new Array(DIVERGENCE_SAMPLES).fill(0);
  it('is the median of per-tensor relative distances, matched by key', () => {
    const a = samples('s', { x: ones, y: ones, z: twos });
    const b = samples('s', { z: ones, y: ones, x: ones });
    // r: x 0, y 0, z 1 → median 0
    expect(divergence(a, b)).toBe(0);
    const c = samples('s', { x: twos, y: twos, z: twos });
    expect(divergence(c, b)).toBe(1);
  });
  it('uses the reference (second argument) as the denominator', () => {
    expect(divergence(samples('s', { x: twos }), samples('s', { x: ones }))).toBe(1);
    expect(divergence(samples('s', { x: ones }), samples('s', { x: twos }))).toBe(0.5);
  });
  it('Σb² = 0 gives 0 when Σa² = 0, else 1', () => {
    expect(divergence(samples('s', { x: zeros }), samples('s', { x: zeros }))).toBe(0);
    expect(divergence(samples('s', { x: ones }), samples('s', { x: zeros }))).toBe(1);
  });
  it('takes the mean of the two middle values for an even count', () => {
    const a = samples('s', { w: ones, x: ones, y: twos, z: twos });
    const b = samples('s', { w: ones, x: ones, y: ones, z: ones });
    expect(divergence(a, b)).toBe(0.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });
  it('ignores tensors missing on one side; no common tensor means maximally different', () => {
    expect(divergence(samples('s', { x: ones, extra: twos }), samples('s', { x: ones }))).toBe(0);
    expect(divergence(samples('s', { x: ones }), samples('s', { y: ones }))).toBe(NO_COMMON_TENSORS_DIVERGENCE);
  });
  it('refuses samples taken under different salts or of the wrong shape', () => {
    expect(() => divergence(samples('s', { x: ones }), samples('t', { x: ones }))).toThrow(/salts differ/);
    expect(() => divergence({ salt: 's', keys: ['x'], values: new Float32Array(3) }, samples('s', { x: ones }))).toThrow(/expected 256/);
  });
});
