import { setMaxListeners } from 'node:events';

const raised = new WeakSet<AbortSignal>();
/** A counting semaphore with FIFO waiters; waiting is abortable so a cancelled eval frees its slot claims. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<{ grant: () => void; reject: (reason: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }> = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`semaphore capacity must be a positive integer, got ${capacity}`);
    this.available = capacity;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.available > 0) {
      this.available -= 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => resolve(this.releaser()),
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index !== -1) this.waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      // One duel's signal legitimately has many queued waiters (all removed on grant); raise
      // Node's leak-warning threshold for it instead of warning on correct code.
      if (signal && !raised.has(signal)) {
        raised.add(signal);
        setMaxListeners(0, signal);
      }
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return; // double release must not inflate capacity
      released = true;
      const next = this.waiters.shift();
      if (next) {
        next.signal?.removeEventListener('abort', next.onAbort);
        next.grant(); // hand the slot over directly
      } else {
        this.available += 1;
      }
    };
  }
}
