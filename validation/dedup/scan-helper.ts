/**
 * Runs the dedup kernel's jobs on the calling thread and, when the job is big enough, on one helper
 * thread at the same time (these machines have 2 cores; the scan and the re-check are memory-bound
 * loops over disjoint rows).
 *
 * Work sharing, not work splitting: both threads claim small chunks from one atomic cursor, so a
 * helper that is slow to wake (≈ 0.1 ms) or not scheduled at all on a busy host costs at most the
 * chunk it holds — the caller simply runs the rest. The caller blocks (Atomics.wait) only for a
 * chunk the helper is running, never for a helper that has not joined: it closes the job first
 * (compare-and-swap on the job state), and a late helper then skips it. Results do not depend on
 * which thread ran which chunk.
 *
 * The helper starts lazily on the first big job and is `unref()`ed; `close()` stops it. If it ever
 * fails to finish a chunk within {@link HELPER_STALL_MS}, the caller re-runs the whole job alone (the
 * kernel is deterministic, so re-scoring a chunk writes the same values) and stops using the helper.
 */
import { Worker } from 'node:worker_threads';
import { tsWorkerSource } from '../../core/ts-worker.ts';
import { CTRL, CTRL_WORDS, runChunks, type ScoreJob, type ScoreKernel, writeJob } from './int8-kernel.ts';

/** A helper that holds a chunk this long is treated as gone. @default 5000 */
export const HELPER_STALL_MS = 5000;
/**
 * Polls of the job state before the caller sleeps on it. The helper's last chunk usually ends within
 * ~0.1 ms; a futex sleep can cost a scheduler tick (4 ms here) to wake from, and polling first cut
 * the caller's total wait by a third in a 1,500-query run at 60k rows. @default 20000 (≈ 0.1 ms)
 */
export const HELPER_SPIN_POLLS = 20000;

export interface ScanHelperOptions {
  /** @default {@link HELPER_STALL_MS} */
  readonly stallMs?: number;
  /** The helper thread's module (tests substitute a misbehaving one). @default scan-helper-worker.ts */
  readonly entry?: URL;
}

export class ScanHelper {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
  private worker: Worker | undefined;
  private ready: Promise<void> = Promise.resolve();
  private broken = false;
  private seq = 0;
  private callerChunks = 0;
  private readonly stallMs: number;
  private readonly entry: URL;

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly memories: readonly WebAssembly.Memory[],
    private readonly kernels: readonly ScoreKernel[],
    options: ScanHelperOptions = {},
  ) {
    this.stallMs = options.stallMs ?? HELPER_STALL_MS;
    this.entry = options.entry ?? new URL('./scan-helper-worker.ts', import.meta.url);
  }

  /** Whether jobs are still shared with a helper thread (false after close() or a stall). */
  get sharing(): boolean {
    return !this.broken;
  }

  /** Chunks run by the helper thread so far. */
  get helperChunks(): number {
    return Atomics.load(this.ctrl, CTRL.HELPER_CHUNKS);
  }

  /** Chunks run by the calling thread so far. */
  get ownChunks(): number {
    return this.callerChunks;
  }

  /** Starts the helper and resolves once it waits for jobs (rejects if it failed to start). */
  whenReady(): Promise<void> {
    this.start();
    return this.ready;
  }

  /** Scores `job` (synchronously); returns when every chunk is written. */
  run(job: ScoreJob): void {
    const ctrl = this.ctrl;
    this.seq = (this.seq + 1) & 0x1fffffff;
    const seq = this.seq;
    writeJob(ctrl, job);
    Atomics.store(ctrl, CTRL.CURSOR, 0);
    const shared = job.total > job.chunk && !this.broken;
    // A small job, or no helper: closed from the start, so a helper waking now skips it.
    Atomics.store(ctrl, CTRL.STATE, shared ? 3 * seq : 3 * seq + 2);
    Atomics.store(ctrl, CTRL.SEQ, seq);
    if (shared) {
      this.start();
      Atomics.notify(ctrl, CTRL.SEQ);
    }
    this.callerChunks += runChunks(ctrl, this.kernels);
    if (!shared || Atomics.compareExchange(ctrl, CTRL.STATE, 3 * seq, 3 * seq + 2) === 3 * seq) return;
    // The helper joined: wait for the chunk it is running.
    for (let poll = 0; poll < HELPER_SPIN_POLLS && Atomics.load(ctrl, CTRL.STATE) === 3 * seq + 1; poll++);
    const deadline = Date.now() + this.stallMs;
    while (Atomics.load(ctrl, CTRL.STATE) === 3 * seq + 1) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.close();
        Atomics.store(ctrl, CTRL.CURSOR, 0);
        this.callerChunks += runChunks(ctrl, this.kernels);
        return;
      }
      Atomics.wait(ctrl, CTRL.STATE, 3 * seq + 1, left);
    }
  }

  /** Stops the helper thread (idempotent). */
  close(): void {
    if (!this.worker) return;
    Atomics.store(this.ctrl, CTRL.STOP, 1);
    Atomics.add(this.ctrl, CTRL.SEQ, 1);
    Atomics.notify(this.ctrl, CTRL.SEQ);
    void this.worker.terminate();
    this.worker = undefined;
    this.broken = true;
  }

  /** Starts the helper thread ahead of the first big job (it takes ≈ 0.3–1 s to load). */
  start(): void {
    if (this.worker || this.broken) return;
    const worker = new Worker(tsWorkerSource(this.entry), {
      eval: true,
      execArgv: [],
      workerData: { module: this.module, memories: this.memories, ctrl: this.ctrl.buffer },
    });
    worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`dedup scan helper exited with code ${code}`)));
    });
    this.ready.catch(() => {
      this.broken = true;
    });
    this.worker = worker;
  }
}
