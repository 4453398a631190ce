import type { EventEmitter } from 'node:events';

/** Small I/O helpers: bounded reads of outside input, and waits that yield to aborts. */

/**
 * Reads a fetch response body, refusing more than `maxBytes`: returns null past the cap (the
 * stream is cancelled, never buffered whole). Every parser of outside input starts here.
 * @example const body = await readBoundedBody(res, 1 << 20); if (!body) throw tooLarge();
 */
export async function readBoundedBody(response: Response, maxBytes: number): Promise<Uint8Array | null> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    return null;
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects). Even `ms <= 0` waits for a
 * timer turn, so a retry loop always yields to I/O between attempts.
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Resolves on the first of `events` on `emitter` whose arguments pass `accept`, after `ms`, or
 * when `signal` aborts (never rejects). The wake-up-or-poll wait of every subscription loop.
 */
export function waitForEvent(
  emitter: EventEmitter,
  events: readonly string[],
  ms: number,
  signal?: AbortSignal,
  accept: (...args: unknown[]) => boolean = () => true,
): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      for (const e of events) emitter.off(e, onEvent);
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const onEvent = (...args: unknown[]) => {
      if (accept(...args)) finish();
    };
    const timer = setTimeout(finish, ms);
    for (const e of events) emitter.on(e, onEvent);
    signal?.addEventListener('abort', finish, { once: true });
  });
}
