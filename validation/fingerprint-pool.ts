import { Worker } from 'node:worker_threads';
import { tsWorkerSource } from '../core/ts-worker.ts';
import { KERNEL_ITEM_SIZE, kernelModule } from './fingerprint-kernel.ts';
import type { ShardJob, ShardResult } from './fingerprint-shard.ts';
import type { WorkerInit, WorkerReply, WorkerRequest } from './fingerprint-worker.ts';

/**
 * A small pool of fingerprint worker threads kept between calls: starting a worker (tsx hooks +
 * transpiling the worker's modules) costs ~0.3–1 s, as much as fingerprinting a few GB from the
 * page cache. Idle workers are `unref()`ed so they never keep the process alive; a worker that
 * failed or was stopped (abort) is terminated and never reused.
 */

/** Idle workers kept per chunk size. @default 4 */
export const MAX_IDLE_FINGERPRINT_WORKERS = 4;

interface Pending {
  readonly resolve: (r: ShardResult) => void;
  readonly reject: (e: Error) => void;
  readonly onBytes: (n: number) => void;
}

class ShardWorker {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  dead = false;
  private pending: Pending | null = null;
  private failReady: (e: Error) => void = () => {};

  constructor(init: WorkerInit) {
    this.worker = new Worker(tsWorkerSource(new URL('./fingerprint-worker.ts', import.meta.url)), { eval: true, workerData: init, execArgv: [] });
    let markReady: () => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      this.failReady = reject;
    });
    this.ready.catch(() => {});
    this.worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') markReady();
      else if (m.type === 'progress') this.pending?.onBytes(m.bytes);
      else {
        const p = this.pending;
        this.pending = null;
        if (m.type === 'done') p?.resolve(m.result);
        else p?.reject(new Error(m.message));
      }
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`fingerprint worker exited with code ${code}`)));
  }

  private fail(err: Error): void {
    this.dead = true;
    this.failReady(err);
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  async run(job: ShardJob, onBytes: (n: number) => void): Promise<ShardResult> {
    await this.ready;
    if (this.dead) throw new Error('fingerprint worker is gone');
    return new Promise<ShardResult>((resolve, reject) => {
      this.pending = { resolve, reject, onBytes };
      this.worker.postMessage({ type: 'job', job } satisfies WorkerRequest);
    });
  }

  stop(): void {
    this.dead = true;
    void this.worker.terminate();
  }
}

const idle = new Map<number, ShardWorker[]>();

async function acquire(count: number, readChunkBytes: number): Promise<ShardWorker[]> {
  const pool = idle.get(readChunkBytes) ?? [];
  const out = pool.splice(0, count).filter((w) => !w.dead);
  if (out.length < count) {
    const module = await kernelModule();
    while (out.length < count) out.push(new ShardWorker({ readChunkBytes, module }));
  }
  for (const w of out) w.worker.ref();
  return out;
}

function release(workers: readonly ShardWorker[], readChunkBytes: number): void {
  const pool = idle.get(readChunkBytes) ?? [];
  for (const w of workers) {
    if (w.dead || pool.length >= MAX_IDLE_FINGERPRINT_WORKERS) w.stop();
    else {
      w.worker.unref();
      pool.push(w);
    }
  }
  idle.set(readChunkBytes, pool);
}

/** Terminates the idle workers (clean shutdown; the pool starts new ones when needed again). */
export async function closeFingerprintWorkers(): Promise<void> {
  const all = [...idle.values()].flat();
  idle.clear();
  await Promise.all(all.map((w) => w.worker.terminate()));
}

/** Thrown by {@link runShardJobs} when `signal` fires. */
export class ShardJobsAborted extends Error {}

/**
 * Runs the jobs on `threads` pooled workers, each taking the next job (largest first) when done.
 * Results are in job order. Rejects with the first failure (its message names the shard) or
 * {@link ShardJobsAborted}; the workers that were busy are then terminated.
 */
export async function runShardJobs(jobs: readonly ShardJob[], threads: number, readChunkBytes: number, onBytes: (n: number) => void, signal?: AbortSignal): Promise<ShardResult[]> {
  if (signal?.aborted) throw new ShardJobsAborted('aborted');
  const queue = jobs
    .map((job, i) => ({ i, job, cost: job.hash ? job.fileSize : job.tensors.reduce((a, t) => a + t.n * KERNEL_ITEM_SIZE[t.dtype], 0) }))
    .sort((a, b) => b.cost - a.cost);
  const results: ShardResult[] = new Array(jobs.length);
  const workers = await acquire(Math.min(threads, jobs.length), readChunkBytes);
  if (signal?.aborted) {
    release(workers, readChunkBytes);
    throw new ShardJobsAborted('aborted');
  }
  let failed = false;
  const stopAll = (): void => {
    failed = true;
    for (const w of workers) w.stop();
  };
  const drain = async (w: ShardWorker): Promise<void> => {
    for (let next = queue.shift(); next && !failed; next = queue.shift()) {
      const { i, job } = next;
      results[i] = await w.run(job, onBytes).catch((err: Error) => {
        throw new Error(`${job.path}: ${err.message}`);
      });
    }
  };
  const finished = Promise.all(workers.map(drain));
  finished.catch(() => {});
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new ShardJobsAborted('aborted'));
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.race([finished, aborted]);
  } catch (err) {
    stopAll();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    release(workers, readChunkBytes);
  }
  return results;
}
