import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../core/prng.ts';
import { compileKernel, INT8_MAX, JOB_BANKS, kernelMemory, ROW_HEADER, type ScoreJob, scoreKernel } from './int8-kernel.ts';
import { ScanHelper } from './scan-helper.ts';

const LEN = 256;
const ROWS = 20_000;

/**
 * A memory of ROWS random int8 rows (anchor 0, every 97th removed) with β = 0.5 and query scale 1e-6,
 * and the scan job over it for either bank (each bank has its own score array).
 */
async function fixture(): Promise<{ module: WebAssembly.Module; memory: WebAssembly.Memory; prepare: (bank: number) => ScoreJob }> {
  const random = mulberry32(11);
  const memory = kernelMemory();
  const queries = 64;
  const stride = ROW_HEADER + LEN;
  const rows = 1024;
  const out = rows + ROWS * stride;
  memory.grow(Math.ceil((out + JOB_BANKS * ROWS * 8) / 65536));
  const view = new DataView(memory.buffer);
  view.setFloat64(0, 0.5, true);
  view.setFloat64(8, 1e-6, true);
  new Int16Array(memory.buffer, queries, LEN).set(Int16Array.from({ length: LEN }, () => Math.round((random() * 2 - 1) * 32767)));
  for (let i = 0; i < ROWS; i++) {
    const at = rows + i * stride;
    view.setFloat64(at, random() * 1e-4, true);
    view.setFloat32(at + 8, random(), true);
    view.setInt32(at + 12, i % 97 === 0 ? -1 : 0, true);
    new Int8Array(memory.buffer, at + ROW_HEADER, LEN).set(Int8Array.from({ length: LEN }, () => Math.round((random() * 2 - 1) * INT8_MAX)));
  }
  const job: ScoreJob = { store: 0, frame: 0, queries, rows, stride, len: LEN, indexed: 0, slots: 0, total: ROWS, chunk: 256, out };
  return { module: await compileKernel(), memory, prepare: (bank) => ({ ...job, out: out + bank * ROWS * 8 }) };
}

function scores(memory: WebAssembly.Memory, job: ScoreJob): Float64Array {
  return new Float64Array(memory.buffer, job.out, job.total).slice();
}

describe('ScanHelper', () => {
  it('shares big jobs with its helper thread and gets the same scores as the caller alone', async () => {
    const { module, memory, prepare } = await fixture();
    const alone = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    alone.close();
    const expected = scores(memory, alone.run(prepare));
    expect(expected.filter((s) => s === Number.NEGATIVE_INFINITY).length).toBe(Math.ceil(ROWS / 97));

    const helper = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    await helper.whenReady();
    // Whether the helper wins a chunk of one job is up to the scheduler; over many jobs it does.
    for (let i = 0; i < 500 && helper.helperChunks === 0; i++) {
      expect(scores(memory, helper.run(prepare))).toEqual(expected);
    }
    expect(helper.helperChunks).toBeGreaterThan(0);
    helper.close();
    expect(scores(memory, helper.run(prepare))).toEqual(expected);
  });

  it('scores the chunk a hung helper holds itself, never waits for it, and drops it after the stall limit', async () => {
    const { module, memory, prepare } = await fixture();
    const reference = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    reference.close();
    const expected = scores(memory, reference.run(prepare));
    for (let bank = 0; bank < JOB_BANKS; bank++) new Float64Array(memory.buffer, prepare(bank).out, ROWS).fill(0);

    const helper = new ScanHelper(module, [memory], [scoreKernel(module, memory)], {
      stallMs: 50,
      entry: new URL('../../tests/fixtures/dedup/hung-scan-helper.ts', import.meta.url),
    });
    await helper.whenReady();
    // The hung helper joins the first job it wakes for (the caller may finish a job before it wakes).
    // Every job is complete anyway, without waiting; once the caller has seen the helper inside the
    // same job for the stall limit, it drops it.
    const started = Date.now();
    while (helper.sharing && Date.now() - started < 60_000) expect(scores(memory, helper.run(prepare))).toEqual(expected);
    expect(helper.sharing).toBe(false);
    for (let i = 0; i < 4; i++) expect(scores(memory, helper.run(prepare))).toEqual(expected);
  });
});
