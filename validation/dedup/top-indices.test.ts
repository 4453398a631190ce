import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../core/prng.ts';
import { topIndices } from './top-indices.ts';

/** The obvious definition: sort by score (desc), ties by index, keep the first `keep`, ascending. */
function reference(scores: Float64Array, keep: number): number[] {
  return Array.from(scores.keys())
    .filter((i) => scores[i]! > Number.NEGATIVE_INFINITY)
    .sort((a, b) => scores[b]! - scores[a]! || a - b)
    .slice(0, keep)
    .sort((a, b) => a - b);
}

describe('topIndices', () => {
  it('matches a full sort on random scores, for pools small and large (sampled and full paths)', () => {
    const random = mulberry32(1);
    for (const [n, keep] of [
      [100, 10],
      [5_000, 64],
      [40_000, 4_096],
      [40_000, 84],
      [1_000, 2_000],
    ] as const) {
      const scores = Float64Array.from({ length: n }, () => random());
      expect(Array.from(topIndices(scores, keep))).toEqual(reference(scores, keep));
    }
  });

  it('takes ties at the threshold in index order and skips removed rows (−∞)', () => {
    const random = mulberry32(2);
    // Few distinct values: most of the pool boundary is ties.
    const scores = Float64Array.from({ length: 20_000 }, () => (random() < 0.1 ? Number.NEGATIVE_INFINITY : Math.floor(random() * 7)));
    for (const keep of [1, 100, 3_000, 17_999, 19_000]) expect(Array.from(topIndices(scores, keep))).toEqual(reference(scores, keep));
  });

  it('is not fooled by periodic rows (a strided sample would only see one of every four)', () => {
    // Rows inserted round-robin from four base models: only every fourth row is close to the query.
    const random = mulberry32(3);
    const scores = Float64Array.from({ length: 100_000 }, (_, i) => (i % 4 === 1 ? 0.99999 + random() * 1e-6 : 0.77 + random() * 1e-2));
    expect(Array.from(topIndices(scores, 8_334))).toEqual(reference(scores, 8_334));
  });

  it('returns every finite index when keep exceeds them, and nothing for an empty input', () => {
    const scores = Float64Array.from([0.5, Number.NEGATIVE_INFINITY, 0.25]);
    expect(Array.from(topIndices(scores, 10))).toEqual([0, 2]);
    expect(Array.from(topIndices(new Float64Array(0), 5))).toEqual([]);
  });
});
