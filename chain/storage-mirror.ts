/**
 * Incremental mirror of one storage map prefix (e.g. `RevealedCommitments(netuid, *)`) as of a lagged
 * block. Upstream re-downloaded and re-decoded the whole commitment map every block; here a sync costs
 * one key listing (keys only, ~100 bytes each) plus the values of keys that are new or that a storage
 * subscription reported as changed. A periodic full resync (and one after every reconnect) keeps the
 * mirror honest if a notification was ever missed.
 *
 * Memory is bounded by the size of the map on chain: one short digest per key, nothing per block.
 */
import { createHash } from 'node:crypto';

/** The raw storage operations a mirror needs (implemented over JSON-RPC by chain/subtensor.ts). */
export interface RawStoragePort {
  /** All keys under `prefix` at block `atHash` (the port pages internally). */
  listKeys(prefix: string, atHash: string): Promise<string[]>;
  /** Values (`0x…` SCALE, or null when absent) of `keys` at `atHash`. */
  readValues(keys: readonly string[], atHash: string): Promise<Map<string, string | null>>;
  /**
   * Subscribes to changes of `keys` (at best blocks). `onChange` receives changed keys with their new
   * value; the first notification carries every key's current value. Resolves an unsubscribe function.
   */
  subscribe(keys: readonly string[], onChange: (changes: ReadonlyArray<readonly [string, string | null]>) => void): Promise<() => void>;
}

export interface MirrorDiff {
  /** Keys that are new or whose value changed, with the value at the synced block. */
  readonly upserted: ReadonlyMap<string, string>;
  /** Keys that disappeared. */
  readonly removed: readonly string[];
  /** True when this sync re-read every value. */
  readonly full: boolean;
}

/** Syncs between full value re-reads. @default 150 (≈ 5 min at the 2 s poll) */
export const DEFAULT_FULL_RESYNC_EVERY = 150;
/** Keys per `state_queryStorageAt` request. @default 256 */
export const READ_BATCH = 256;

function digest(value: string): string {
  return createHash('sha1').update(value).digest('base64');
}

export class PrefixMirror {
  /** key → digest of the value at the last synced block. */
  private readonly known = new Map<string, string>();
  /** key → digest of the newest value a notification reported (may be ahead of the synced block). */
  private readonly dirty = new Map<string, string | null>();
  private syncs = 0;
  private forceFull = true;
  private unsubscribe: (() => void) | null = null;
  private subscribedKeys = '';

  constructor(
    private readonly port: RawStoragePort,
    readonly prefix: string,
    private readonly options: { fullResyncEvery?: number; subscribe?: boolean } = {},
  ) {}

  /** Number of keys mirrored. */
  get size(): number {
    return this.known.size;
  }

  /** Number of keys waiting for their change to reach the synced block. */
  get pending(): number {
    return this.dirty.size;
  }

  /** Forgets keys so the next sync reports their values again (their processing failed). */
  forget(keys: Iterable<string>): void {
    for (const key of keys) this.known.delete(key);
  }

  /** Marks the mirror for a full re-read at the next sync (call after a reconnect). */
  invalidate(): void {
    this.forceFull = true;
  }

  async sync(atHash: string): Promise<MirrorDiff> {
    const every = this.options.fullResyncEvery ?? DEFAULT_FULL_RESYNC_EVERY;
    // Without a subscription nothing marks changed keys, so every sync must re-read every value.
    const full = this.forceFull || this.options.subscribe === false || (every > 0 && this.syncs % every === 0);
    this.syncs++;
    const keys = await this.port.listKeys(this.prefix, atHash);
    const present = new Set(keys);
    const removed: string[] = [];
    for (const key of this.known.keys()) {
      if (!present.has(key)) removed.push(key);
    }
    const toRead = full ? keys : keys.filter((k) => !this.known.has(k) || this.dirty.has(k));
    const upserted = new Map<string, string>();
    for (let i = 0; i < toRead.length; i += READ_BATCH) {
      const values = await this.port.readValues(toRead.slice(i, i + READ_BATCH), atHash);
      for (const [key, value] of values) {
        if (value === null) continue; // listed but gone by read time: the next listing removes it
        const d = digest(value);
        if (this.known.get(key) !== d) upserted.set(key, value);
        this.known.set(key, d);
        // A change is settled once the synced block shows the notified value.
        if (this.dirty.has(key) && this.dirty.get(key) === d) this.dirty.delete(key);
      }
    }
    for (const key of removed) {
      this.known.delete(key);
      this.dirty.delete(key);
    }
    if (full) {
      this.forceFull = false;
      // After a full read every remaining dirty mark refers to a value newer than the synced block.
      for (const key of this.dirty.keys()) if (!present.has(key)) this.dirty.delete(key);
    }
    await this.resubscribeIfNeeded(keys);
    return { upserted, removed, full };
  }

  private async resubscribeIfNeeded(keys: readonly string[]): Promise<void> {
    if (this.options.subscribe === false) return;
    const signature = keys.length === 0 ? '' : `${keys.length}:${digest(keys.join(','))}`;
    if (signature === this.subscribedKeys) return;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.subscribedKeys = signature;
    if (keys.length === 0) return;
    this.unsubscribe = await this.port.subscribe(keys, (changes) => {
      for (const [key, value] of changes) {
        const d = value === null ? null : digest(value);
        if (this.known.get(key) !== d) this.dirty.set(key, d);
      }
    });
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.subscribedKeys = '';
  }
}
