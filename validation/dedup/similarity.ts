/**
 * The comparison functions of the dedup rules: the upstream `cosine`/`similarity` (spec/validation.md
 * §8, bit-for-bit semantics) and the product's `divergence` on sampled weights (§9.2).
 */
import { DIVERGENCE_SAMPLES, type DivergenceSamples, type LayerFingerprint } from '../fingerprint-types.ts';

/** §8: a tensor counts as "unchanged" when its 16 samples keep a cosine of at least this. */
export const UNCHANGED_TENSOR_COSINE = 1 - 1e-6;

/**
 * §8 `cosine`: 0.0 when the lengths differ or are zero; else `dot / (sqrt(Σx²)·sqrt(Σy²))` with
 * sequential left-to-right float64 sums (not pairwise: the upstream used plain Python loops); 0.0
 * when the denominator is 0.
 */
export function cosine(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (n !== y.length || n === 0) return 0.0;
  let dot = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i]!;
    const b = y[i]!;
    dot += a * b;
    xx += a * a;
    yy += b * b;
  }
  const denominator = Math.sqrt(xx) * Math.sqrt(yy);
  return denominator === 0 ? 0.0 : dot / denominator;
}

/** Σx² in the same sequential order as {@link cosine}; lets a caller precompute one side. */
export function sequentialSumOfSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function allZero(values: readonly number[]): boolean {
  for (const v of values) if (v !== 0) return false;
  return true;
}

/**
 * §8 `similarity`: 0.0 when `layer_keys` differ; else, when both have non-empty `tensor_samples` of
 * equal length, the fraction of tensors that are unchanged (both sample vectors all-zero, or their
 * cosine ≥ 1 − 1e-6); else the cosine of the norm vectors.
 */
export function similarity(a: Pick<LayerFingerprint, 'layer_keys' | 'norm_vector' | 'tensor_samples'>, b: Pick<LayerFingerprint, 'layer_keys' | 'norm_vector' | 'tensor_samples'>): number {
  if (!sameKeys(a.layer_keys, b.layer_keys)) return 0.0;
  const sa = a.tensor_samples;
  const sb = b.tensor_samples;
  if (sa.length > 0 && sb.length > 0 && sa.length === sb.length) {
    let unchanged = 0;
    for (let i = 0; i < sa.length; i++) {
      const x = sa[i]!;
      const y = sb[i]!;
      if ((allZero(x) && allZero(y)) || cosine(x, y) >= UNCHANGED_TENSOR_COSINE) unchanged++;
    }
    return unchanged / sa.length;
  }
  return cosine(a.norm_vector, b.norm_vector);
}

/**
 * §9.2 per-tensor relative distance `r = sqrt(Σ(a−b)²) / sqrt(Σb²)` in float64 over the sampled
 * values (`b` is the reference); `Σb² = 0` ⇒ 0 if `Σa² = 0` else 1.
 */
export function relativeDistance(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, count: number): number {
  let diff = 0;
  let ref = 0;
  let own = 0;
  for (let i = 0; i < count; i++) {
    const x = a[aOffset + i]!;
    const y = b[bOffset + i]!;
    const d = x - y;
    diff += d * d;
    ref += y * y;
    own += x * x;
  }
  if (ref === 0) return own === 0 ? 0 : 1;
  return Math.sqrt(diff) / Math.sqrt(ref);
}

/**
 * Divergence returned when the two models share no tensor key: 1 means "maximally different" (a
 * relative distance of 100 %). Models without a common tensor cannot be copies of each other, and
 * returning 0 would flag every architecture mismatch as `too_similar`.
 */
export const NO_COMMON_TENSORS_DIVERGENCE = 1;

/**
 * §9.2 model divergence `D(a, b)`: the median over tensors present in both (matched by key, not by
 * position) of the per-tensor relative distance, `b` being the reference. For an even count the
 * median is the mean of the two middle values (the usual statistical definition, symmetric in the
 * order of the values). No common tensor ⇒ {@link NO_COMMON_TENSORS_DIVERGENCE}. Both sides must use
 * the same salt (positions differ otherwise); a salt mismatch is a programming error and throws.
 */
export function divergence(a: DivergenceSamples, b: DivergenceSamples): number {
  if (a.salt !== b.salt) throw new Error(`divergence: salts differ (${a.salt} vs ${b.salt})`);
  assertShape(a);
  assertShape(b);
  const bIndex = new Map<string, number>();
  b.keys.forEach((key, i) => {
    bIndex.set(key, i);
  });
  const distances: number[] = [];
  a.keys.forEach((key, i) => {
    const j = bIndex.get(key);
    if (j === undefined) return;
    distances.push(relativeDistance(a.values, i * DIVERGENCE_SAMPLES, b.values, j * DIVERGENCE_SAMPLES, DIVERGENCE_SAMPLES));
  });
  return median(distances) ?? NO_COMMON_TENSORS_DIVERGENCE;
}

/** Median of the values (mean of the two middle ones for an even count); undefined when empty. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function assertShape(s: DivergenceSamples): void {
  if (s.values.length !== s.keys.length * DIVERGENCE_SAMPLES) {
    throw new Error(`divergence samples: ${s.values.length} values for ${s.keys.length} keys (expected ${s.keys.length * DIVERGENCE_SAMPLES})`);
  }
}
