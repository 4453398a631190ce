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

/** Independent fine-tunes of two base models (no lineage): the hardest case for the sketch. */
function isotropicData(seed: number, n: number, d: number): Float64Array[] {
  const random = mulberry32(seed);
  const bases = [0, 1].map(() => Float64Array.from({ length: d }, () => 1 + 50 * random()));
  return Array.from({ length: n }, (_, i) => Float64Array.from(bases[i % 2]!, (v) => v * (1 + 1e-3 * gaussian(random))));
}

function nearQueries(seed: number, rows: readonly Float64Array[], count: number): Float64Array[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Float64Array.from(rows[Math.floor(random() * rows.length)]!, (v) => v * (1 + 1e-3 * gaussian(random))));
}

/** An index of `rows` under the ids m0, m1, … */
async function indexOf(rows: readonly Float64Array[], d: number): Promise<DimensionIndex> {
  const index = await DimensionIndex.create(d);
  rows.forEach((r, i) => {
    index.upsert(`m${i}`, r);
  });
  return index;
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
    const index = await indexOf(rows, d);
    const random = mulberry32(99);
    for (let q = 0; q < 20; q++) {
      const parent = rows[Math.floor(random() * n)]!;
      const query = Float64Array.from(parent, (v) => v * (1 + 1e-3 * gaussian(random)));
      expect(index.search(query, 20)).toEqual(index.search(query, 20, { exact: true }));
    }
    index.close();
  });

  it('the fast path returns the exact top-20 on isotropic fine-tunes too (sketch pool > MIN_RERANK_CANDIDATES)', async () => {
    const d = 96;
    const rows = isotropicData(21, MIN_RERANK_CANDIDATES + 2_000, d);
    const index = await indexOf(rows, d);
    for (const query of nearQueries(22, rows, 20)) expect(index.search(query, 20)).toEqual(index.search(query, 20, { exact: true }));
    // Same answers once the helper thread is stopped (the caller runs every chunk).
    const query = nearQueries(23, rows, 1)[0]!;
    const shared = index.search(query, 20);
    index.close();
    expect(index.search(query, 20)).toEqual(shared);
  });

  it('never returns removed or replaced vectors from the fast path, and ranks an anchor row (zero residual) first for itself', async () => {
    const d = 64;
    const rows = lineageData(31, MIN_RERANK_CANDIDATES + 2_000, d);
    const index = await indexOf(rows, d);
    const random = mulberry32(32);
    const removed = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const id = `m${1 + Math.floor(random() * (rows.length - 1))}`;
      if (i % 2) {
        index.remove(id);
        removed.add(id);
      } else {
        // Replaced by a vector near the queries' rows: it must rank by its new value.
        index.upsert(id, Float64Array.from(rows[Math.floor(random() * rows.length)]!, (v) => v * (1 + 1e-3 * gaussian(random))));
        removed.delete(id);
      }
    }
    for (const query of nearQueries(33, rows, 20)) {
      const hits = index.search(query, 20);
      expect(hits).toEqual(index.search(query, 20, { exact: true }));
      expect(hits.filter((hit) => removed.has(hit.id))).toEqual([]);
    }
    // m0 opened the first anchor: its residual is zero; its cosine with itself is the exact float64 value.
    expect(index.search(rows[0]!, 1)).toEqual([{ id: 'm0', score: cosine(rows[0]!, rows[0]!) }]);
    index.close();
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
