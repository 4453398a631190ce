import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../core/prng.ts';
import { cosine } from './similarity.ts';
import { gaussian } from './synthetic-fingerprints.ts';
import { DimensionIndex, MIN_RERANK_CANDIDATES } from './vector-search.ts';

/** Norm vectors of fine-tunes of two base models, with lineage (fine-tunes of fine-tunes). */
function lineageData(seed: number, n: number, d: number): Float64Array[] {
  const random = mulberry32(seed);
  const bases = [0, 1].map(() => Float64Array.from({ length: d }, () => 1 + 50 * random()));
  const rows: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const parent = rows.length > 10 && random() < 0.7 ? rows[Math.floor(random() * rows.length)]! : bases[i % 2]!;
    const rel = 1e-3 * (0.5 + random());
    rows.push(Float64Array.from(parent, (v) => v * (1 + rel * gaussian(random))));
  }
  return rows;
}

describe('DimensionIndex', () => {
  it('returns exact float64 cosine scores, best first, ties by id', async () => {
    const index = await DimensionIndex.create(3);
    index.upsert('b', [1, 0, 0]);
    index.upsert('a', [2, 0, 0]);
    index.upsert('c', [0, 1, 0]);
    const hits = index.search([1, 0.5, 0], 3);
    expect(hits.map((h) => h.id)).toEqual(['a', 'b', 'c']);
    expect(hits[0]!.score).toBe(cosine([1, 0.5, 0], [2, 0, 0]));
  });

  it('replaces a vector on upsert of the same id (idempotent)', async () => {
    const index = await DimensionIndex.create(2);
    index.upsert('x', [1, 0]);
    index.upsert('x', [0, 1]);
    expect(index.size).toBe(1);
    expect(index.search([0, 1], 5)).toEqual([{ id: 'x', score: 1 }]);
  });

  it('the sketch prefilter returns the same top-20 as the exact scan on fine-tune data', async () => {
    const d = 128;
    const n = MIN_RERANK_CANDIDATES * 2;
    const rows = lineageData(7, n, d);
    const index = await DimensionIndex.create(d);
    rows.forEach((r, i) => {
      index.upsert(`m${i}`, r);
    });
    const random = mulberry32(99);
    for (let q = 0; q < 20; q++) {
      const parent = rows[Math.floor(random() * n)]!;
      const query = Float64Array.from(parent, (v) => v * (1 + 1e-3 * gaussian(random)));
      expect(index.search(query, 20)).toEqual(index.search(query, 20, { exact: true }));
    }
  });

  it('removes ids (a model re-indexed under another dimension)', async () => {
    const index = await DimensionIndex.create(2);
    index.upsert('x', [1, 0]);
    index.upsert('y', [0, 1]);
    index.remove('x');
    index.remove('absent');
    expect(index.size).toBe(1);
    expect(index.search([1, 0], 5).map((h) => h.id)).toEqual(['y']);
  });

  it('rejects vectors of the wrong dimension', async () => {
    const index = await DimensionIndex.create(4);
    expect(() => index.upsert('x', [1, 2])).toThrow(RangeError);
    expect(() => index.search([1], 1)).toThrow(RangeError);
  });
});
