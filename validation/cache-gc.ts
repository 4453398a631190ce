/**
 * The model cache's garbage collector as a validator service (spec/validation.md §5 "Cache GC"):
 * keep the 5 kings, the genesis and every in-flight submission, delete other models unused for
 * `ALBEDO_MODEL_TTL_MIN`, then the least recently used ones until the cache fits its size cap.
 * The protected set is read from the database on every pass, so a king crowned a second ago is
 * never evicted; models being read right now are additionally held by in-process leases.
 */
import { TERMINAL_STATES } from '../core/states.ts';
import type { Db } from '../persistence/db.ts';
import type { GcResult, ModelCache } from './model-cache.ts';
import { kingsAndGenesis } from './references.ts';

/** Period of the GC pass. @default 10 minutes */
export const DEFAULT_CACHE_GC_INTERVAL_MS = 10 * 60_000;

/** Model uris the GC must keep: the kings, the genesis and every unfinished submission. */
export async function protectedModelUris(db: Db): Promise<Set<string>> {
  const kings = await kingsAndGenesis(db);
  // Any non-terminal submission's model may still be read by a stage (validation, pre-eval, the duel).
  const { rows } = await db.query<{ model_uri: string }>('SELECT DISTINCT model_uri FROM model_submissions WHERE state <> ALL($1::text[])', [[...TERMINAL_STATES]]);
  return new Set([...kings.map((k) => k.model_uri), ...rows.map((r) => r.model_uri)]);
}

/** One pass: the protected set, then `cache.gc`. */
export async function collectModelCache(db: Db, cache: ModelCache, now?: number): Promise<GcResult> {
  return cache.gc({ protected: await protectedModelUris(db), ...(now !== undefined ? { now } : {}) });
}

export interface CacheGcOptions {
  readonly db: Db;
  readonly cache: ModelCache;
  /** @default DEFAULT_CACHE_GC_INTERVAL_MS */
  readonly intervalMs?: number;
  readonly onResult?: (result: GcResult) => void;
  readonly onError?: (error: unknown) => void;
}

/** Runs {@link collectModelCache} now and then every `intervalMs`, one pass at a time. */
export function startCacheGc(o: CacheGcOptions): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = () => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        const result = await collectModelCache(o.db, o.cache);
        o.onResult?.(result);
      } catch (error) {
        o.onError?.(error);
      }
    });
  };
  pass();
  const timer = setInterval(pass, o.intervalMs ?? DEFAULT_CACHE_GC_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
