import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../core/prng.ts';
import { compileKernel, CTRL_WORDS, INT8_MAX, JOB_BANKS, kernelMemory, MAX_CHUNKS, quantize, queryRange, ROW_HEADER, runChunks, runUnfinished, type ScoreJob, scoreKernel } from './int8-kernel.ts';

/**
 * One-row-store harness: `rows` int8 rows (header: a·r = 0, scale 1, anchor 0) and one int16 query
 * with β = 0 and scale 1, so the kernel's score is the raw integer dot product.
 */
async function rawDots(rows: Int8Array[], query: Int16Array, chunk: number): Promise<Float64Array> {
  const len = query.length;
  const memory = kernelMemory();
  const stride = ROW_HEADER + len;
  const queries = 64;
  const rowsBase = Math.ceil((queries + len * 2) / 64) * 64;
  const out = rowsBase + rows.length * stride;
  memory.grow(Math.ceil((out + rows.length * 8) / 65536));
  const view = new DataView(memory.buffer);
  view.setFloat64(0, 0, true);
  view.setFloat64(8, 1, true);
  new Int16Array(memory.buffer, queries, len).set(query);
  rows.forEach((row, i) => {
    const at = rowsBase + i * stride;
    view.setFloat64(at, 0, true);
    view.setFloat32(at + 8, 1, true);
    view.setInt32(at + 12, 0, true);
    new Int8Array(memory.buffer, at + ROW_HEADER, len).set(row);
  });
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
  const done = new Int32Array(new SharedArrayBuffer(JOB_BANKS * MAX_CHUNKS * 4));
  const job: ScoreJob = { store: 0, frame: 0, queries, rows: rowsBase, stride, len, indexed: 0, slots: 0, total: rows.length, chunk, out };
  const kernel = scoreKernel(await compileKernel(), memory);
  expect(runChunks(ctrl, done, 7, 1, job, [kernel])).toBe(Math.ceil(rows.length / chunk));
  // Every chunk is stamped done for job 7, so nothing is left for the caller's completion pass.
  expect(runUnfinished(done, 7, 1, job, [kernel])).toBe(0);
  return new Float64Array(memory.buffer, out, rows.length).slice();
}

describe('int8 dedup kernel', () => {
  it('bounds the query so that no i32 lane can overflow', () => {
    expect(queryRange(256)).toBe(32767);
    expect(queryRange(3008)).toBe(22485);
    for (const len of [32, 256, 3008, 16_000, 100_000]) {
      expect(INT8_MAX * Math.ceil(len / 4) * queryRange(len)).toBeLessThanOrEqual(2 ** 31 - 1);
    }
  });

  it('computes exact integer dots at the extreme magnitudes (the overflow bound is tight, not hopeful)', async () => {
    for (const len of [3008, 16_000]) {
      const range = queryRange(len);
      const query = new Int16Array(len).fill(range);
      const alternating = Int16Array.from({ length: len }, (_, i) => (i % 2 ? -range : range));
      const rows = [new Int8Array(len).fill(INT8_MAX), new Int8Array(len).fill(-INT8_MAX), Int8Array.from({ length: len }, (_, i) => (i % 2 ? -INT8_MAX : INT8_MAX))];
      expect(Array.from(await rawDots(rows, query, 2))).toEqual([len * INT8_MAX * range, -len * INT8_MAX * range, 0]);
      expect((await rawDots(rows, alternating, 1))[2]).toBe(len * INT8_MAX * range);
    }
  });

  it('matches a plain integer dot on random rows, whatever the chunking', async () => {
    const random = mulberry32(5);
    const len = 256;
    const rows = Array.from({ length: 37 }, () => Int8Array.from({ length: len }, () => Math.round((random() * 2 - 1) * INT8_MAX)));
    const query = Int16Array.from({ length: len }, () => Math.round((random() * 2 - 1) * 32767));
    const expected = rows.map((row) => row.reduce((sum, v, i) => sum + v * query[i]!, 0));
    for (const chunk of [1, 4, 37, 100]) expect(Array.from(await rawDots(rows, query, chunk))).toEqual(expected);
  });

  it('quantises to the range with the scale of the largest magnitude (zero vectors stay zero)', () => {
    const out = new Int8Array(4);
    expect(quantize([0, 0, 0, 0], INT8_MAX, out)).toBe(0);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    const values = [0.5, -1, 0.25, 0.001];
    const scale = quantize(values, INT8_MAX, out);
    expect(scale).toBe(1 / INT8_MAX);
    expect(Array.from(out)).toEqual([64, -127, 32, 0]);
    values.forEach((v, i) => {
      expect(Math.abs(out[i]! * scale - v)).toBeLessThanOrEqual(scale / 2);
    });
  });

});
