import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../core/prng.ts';
import { compileKernel, INT8_MAX, kernelMemory, ROW_HEADER, type ScoreJob, scoreKernel } from './int8-kernel.ts';
import { ScanHelper } from './scan-helper.ts';

const LEN = 256;
const ROWS = 20_000;

/** A memory of ROWS random int8 rows (anchor 0) with β = 0.5 and query scale 1e-6; the scan job over it. */
async function fixture(): Promise<{ module: WebAssembly.Module; memory: WebAssembly.Memory; job: ScoreJob }> {
  const random = mulberry32(11);
  const memory = kernelMemory();
  const queries = 64;
  const stride = ROW_HEADER + LEN;
  const rows = 1024;
  const out = rows + ROWS * stride;
  memory.grow(Math.ceil((out + ROWS * 8) / 65536));
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
  return { module: await compileKernel(), memory, job };
}

function scores(memory: WebAssembly.Memory, job: ScoreJob): Float64Array {
  return new Float64Array(memory.buffer, job.out, job.total).slice();
}

describe('ScanHelper', () => {
  it('shares big jobs with its helper thread and gets the same scores as the caller alone', async () => {
    const { module, memory, job } = await fixture();
    const alone = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    alone.close();
    alone.run(job);
    const expected = scores(memory, job);
    expect(expected.filter((s) => s === Number.NEGATIVE_INFINITY).length).toBe(Math.ceil(ROWS / 97));

    const helper = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    await helper.whenReady();
    // Whether the helper wins a chunk of one job is up to the scheduler; over many jobs it does.
    for (let i = 0; i < 500 && helper.helperChunks === 0; i++) {
      new Float64Array(memory.buffer, job.out, job.total).fill(0);
      helper.run(job);
      expect(scores(memory, job)).toEqual(expected);
    }
    expect(helper.helperChunks).toBeGreaterThan(0);
    helper.close();
    helper.run(job);
    expect(scores(memory, job)).toEqual(expected);
  });

  it('runs the job alone when the helper holds a chunk past the stall limit, and stops using it', async () => {
    const { module, memory, job } = await fixture();
    const reference = new ScanHelper(module, [memory], [scoreKernel(module, memory)]);
    reference.close();
    reference.run(job);
    const expected = scores(memory, job);
    new Float64Array(memory.buffer, job.out, job.total).fill(0);

    const helper = new ScanHelper(module, [memory], [scoreKernel(module, memory)], {
      stallMs: 200,
      entry: new URL('../../tests/fixtures/dedup/hung-scan-helper.ts', import.meta.url),
    });
    await helper.whenReady();
    // The hung helper joins the first job it wakes for; the caller may finish a job before it wakes.
    for (let i = 0; i < 500 && helper.sharing; i++) {
      helper.run(job);
      expect(scores(memory, job)).toEqual(expected);
    }
    expect(helper.sharing).toBe(false);
    helper.run(job);
    expect(scores(memory, job)).toEqual(expected);
  });
});
