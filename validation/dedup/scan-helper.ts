/**
 * Runs the dedup kernel's jobs on the calling thread and, when a job is big enough, on one helper
 * thread at the same time (these machines have 2 cores; the scan and the re-check are memory-bound
 * loops over disjoint rows).
 *
 * The caller never waits for the helper inside a job:
 *  - Work sharing, not splitting: both threads claim small chunks from one atomic cursor, so a
 *    helper that is slow to wake (≈ 0.1 ms) or not scheduled at all costs nothing.
 *  - When the cursor runs out, the caller scores every chunk whose done flag is not stamped yet —
 *    including one the helper may still be running — instead of waiting for it. The kernel is
 *    deterministic, so two threads scoring the same chunk write the same bytes.
 *  - (An earlier version waited for the helper's last chunk. On this shared 2-core host the helper
 *    was sometimes descheduled mid-chunk, and the caller then lost a scheduler tick, ≈ 4 ms, about
 *    once per hundred queries: p99 22 ms against 16 ms on one thread.)
 *
 * A helper may therefore still be finishing job `n` while the caller runs the next jobs. Each job
 * runs in one of JOB_BANKS (4) banks, each with its own control block, done flags, and output and
 * slot buffers (the caller's `prepare(bank)` picks them), and never in the bank the helper is still
 * inside: the helper only ever joins the newest job, so it is inside at most one bank and another is
 * always free. Its late writes to its job's buffers are either the same bytes the caller already
 * wrote or go to buffers nobody reads until that bank is reused, after it left. So the caller never
 * waits for the helper during a query. (With a fixed rotation over two banks, the next query's scan
 * had to wait for a helper descheduled inside the previous scan about once per five queries, up
 * to 8 ms.) {@link ScanHelper.quiesce} does wait for the helper to leave, before rows are written
 * or moved.
 *
 * The helper starts on the first big job (or on {@link ScanHelper.start}) and is `unref()`ed;
 * `close()` stops it. A helper seen inside the same job for {@link HELPER_STALL_MS} is treated as
 * gone: it is terminated, and that job's bank is never used again.
 */
import { Worker } from 'node:worker_threads';
import { tsWorkerSource } from '../../core/ts-worker.ts';
import { blockWord, CTRL, CTRL_WORDS, CURSOR, JOB_BANKS, MAX_CHUNKS, runChunks, runUnfinished, STATE, type ScoreJob, type ScoreKernel, writeJob } from './int8-kernel.ts';

/** A helper seen inside the same job for this long is treated as gone. @default 5000 */
export const HELPER_STALL_MS = 5000;
/**
 * Polls of a bank's state before {@link ScanHelper.quiesce} sleeps on it. A futex sleep can cost a
 * scheduler tick (4 ms here) to wake from.
 * @default 20000 (≈ 0.1 ms)
 */
export const HELPER_SPIN_POLLS = 20000;

export interface ScanHelperOptions {
  /** @default {@link HELPER_STALL_MS} */
  readonly stallMs?: number;
  /** The helper thread's module (tests substitute a misbehaving one). @default scan-helper-worker.ts */
  readonly entry?: URL;
}

/** Jobs are numbered from 1 and wrap after this one (3·seq + 2 must fit an i32). */
const LAST_SEQ = 2 ** 28;

export class ScanHelper {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
  private readonly done = new Int32Array(new SharedArrayBuffer(JOB_BANKS * MAX_CHUNKS * 4));
  private worker: Worker | undefined;
  private ready: Promise<void> = Promise.resolve();
  private broken = false;
  /** The bank a stalled helper may still write to: never used again (nor needed: no helper is left). */
  private poisoned: number | undefined;
  /** The helper's job state when first seen inside a job the caller was rotating onto. */
  private busy: { state: number; since: number } | undefined;
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

  /**
   * Scores one job (synchronously) and returns it. `prepare(bank)` is called with a bank whose
   * buffers no thread is using and returns the job with that bank's output (and slot) buffers.
   */
  run(prepare: (bank: number) => ScoreJob): ScoreJob {
    const ctrl = this.ctrl;
    this.seq = this.seq >= LAST_SEQ ? 1 : this.seq + 1;
    const seq = this.seq;
    const bank = this.freeBank(seq);
    const prepared = prepare(bank);
    const job = { ...prepared, chunk: Math.max(prepared.chunk, Math.ceil(prepared.total / MAX_CHUNKS)) };
    const stateAt = blockWord(bank, STATE);
    writeJob(ctrl, bank, job);
    Atomics.store(ctrl, blockWord(bank, CURSOR), 0);
    const shared = job.total > job.chunk && !this.broken;
    // A small job, or no helper: closed from the start, so a helper waking now skips it.
    Atomics.store(ctrl, stateAt, shared ? 3 * seq : 3 * seq + 2);
    Atomics.store(ctrl, CTRL.SEQ, seq);
    if (shared) {
      this.start();
      Atomics.notify(ctrl, CTRL.SEQ);
    }
    this.callerChunks += runChunks(ctrl, this.done, seq, bank, job, this.kernels);
    if (shared) {
      this.callerChunks += runUnfinished(this.done, seq, bank, job, this.kernels);
      // Close the job unless the helper is inside it (then the helper closes it when it leaves).
      Atomics.compareExchange(ctrl, stateAt, 3 * seq, 3 * seq + 2);
    }
    return job;
  }

  /** Returns once the helper is inside no job, i.e. writes nothing (before rows are written or moved). */
  quiesce(): void {
    const ctrl = this.ctrl;
    for (let bank = 0; bank < JOB_BANKS; bank++) {
      if (bank === this.poisoned) continue;
      const stateAt = blockWord(bank, STATE);
      let state = Atomics.load(ctrl, stateAt);
      for (let poll = 0; poll < HELPER_SPIN_POLLS && inside(state); poll++) state = Atomics.load(ctrl, stateAt);
      const deadline = Date.now() + this.stallMs;
      while (inside(state)) {
        const left = deadline - Date.now();
        if (left <= 0) {
          this.drop(bank);
          break;
        }
        Atomics.wait(ctrl, stateAt, state, left);
        state = Atomics.load(ctrl, stateAt);
      }
    }
  }

  /** Stops the helper thread (idempotent). */
  close(): void {
    this.broken = true;
    if (!this.worker) return;
    Atomics.store(this.ctrl, CTRL.STOP, 1);
    Atomics.add(this.ctrl, CTRL.SEQ, 1);
    Atomics.notify(this.ctrl, CTRL.SEQ);
    void this.worker.terminate();
    this.worker = undefined;
  }

  /** Starts the helper thread ahead of the first big job (it takes ≈ 0.3–1 s to load). */
  start(): void {
    if (this.worker || this.broken) return;
    const worker = new Worker(tsWorkerSource(this.entry), {
      eval: true,
      execArgv: [],
      workerData: { module: this.module, memories: this.memories, ctrl: this.ctrl.buffer, done: this.done.buffer },
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

  /**
   * The bank for job `seq`: the next in rotation that the helper is not inside. The helper is inside
   * at most one job (it only ever joins the newest), so one of the other banks is always free and the
   * caller never waits. Seeing the helper inside the same job for {@link HELPER_STALL_MS} drops it.
   */
  private freeBank(seq: number): number {
    for (let i = 0; i < JOB_BANKS; i++) {
      const bank = (seq + i) % JOB_BANKS;
      if (bank === this.poisoned) continue;
      const state = Atomics.load(this.ctrl, blockWord(bank, STATE));
      if (!inside(state)) return bank;
      if (this.busy?.state !== state) this.busy = { state, since: Date.now() };
      else if (Date.now() - this.busy.since > this.stallMs) this.drop(bank);
    }
    throw new Error('dedup scan helper: no free job bank'); // unreachable: at most one bank is busy
  }

  /** Stops using a helper that is stuck inside a job of `bank`; that bank is never used again. */
  private drop(bank: number): void {
    this.close();
    this.poisoned = bank;
  }
}

/** Whether a bank's state says the helper is inside its job (3·seq + 1). */
function inside(state: number): boolean {
  return state % 3 === 1;
}
