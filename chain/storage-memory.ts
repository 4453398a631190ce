/**
 * An in-memory {@link RawStoragePort} with per-block history: the storage model of a substrate node
 * reduced to sorted keys and versioned values. Used by the mirror/scanner unit tests and by
 * `npm run bench -- chain`, where a WebSocket round trip would measure the network instead of the reader.
 */
import type { RawStoragePort } from './storage-mirror.ts';

/** Versions kept per key; reads further back than this answer like a pruned node. @default 64 */
export const DEFAULT_MEMORY_HISTORY = 64;

export class MemoryStorage implements RawStoragePort {
  /** key → versions `[block, value | null]`, oldest first. */
  private readonly values = new Map<string, Array<[number, string | null]>>();
  private readonly blockByHash = new Map<string, number>();
  private readonly hashByBlock = new Map<number, string>();
  private readonly subscribers = new Set<{ keys: Set<string>; onChange: (changes: ReadonlyArray<readonly [string, string | null]>) => void }>();
  private sortedKeys: string[] | null = [];
  private head = -1;
  /** Counters for tests and the benchmark: how much the reader actually asked for. */
  readonly stats = { listKeys: 0, keysListed: 0, readValues: 0, valuesRead: 0 };

  constructor(private readonly history = DEFAULT_MEMORY_HISTORY) {}

  get best(): number {
    return this.head;
  }

  hashOf(block: number): string {
    const hash = this.hashByBlock.get(block);
    if (!hash) throw new Error(`unknown block ${block}`);
    return hash;
  }

  /** Applies `changes` as the next block and notifies subscribers of the keys that changed. */
  commitBlock(changes: ReadonlyMap<string, string | null> = new Map()): { number: number; hash: string } {
    const number = ++this.head;
    const hash = `0x${number.toString(16).padStart(64, '0')}`;
    this.blockByHash.set(hash, number);
    this.hashByBlock.set(number, hash);
    const prune = number - this.history * 4;
    if (prune >= 0) {
      const old = this.hashByBlock.get(prune);
      if (old) this.blockByHash.delete(old);
      this.hashByBlock.delete(prune);
    }
    const changed: Array<[string, string | null]> = [];
    for (const [key, value] of changes) {
      let versions = this.values.get(key);
      if (!versions) {
        if (value === null) continue;
        versions = [];
        this.values.set(key, versions);
        this.sortedKeys = null;
      }
      const last = versions[versions.length - 1];
      if (last && last[1] === value) continue;
      versions.push([number, value]);
      if (versions.length > this.history) versions.splice(0, versions.length - this.history);
      changed.push([key, value]);
    }
    for (const sub of this.subscribers) {
      const mine = changed.filter(([key]) => sub.keys.has(key));
      if (mine.length > 0) sub.onChange(mine);
    }
    return { number, hash };
  }

  private valueAt(key: string, block: number): string | null {
    const versions = this.values.get(key);
    if (!versions) return null;
    for (let i = versions.length - 1; i >= 0; i--) {
      const [at, value] = versions[i] as [number, string | null];
      if (at <= block) return value;
    }
    return null;
  }

  private blockOf(hash: string): number {
    const block = this.blockByHash.get(hash);
    if (block === undefined) throw new Error(`State already discarded for ${hash}`);
    return block;
  }

  async listKeys(prefix: string, atHash: string): Promise<string[]> {
    const block = this.blockOf(atHash);
    this.sortedKeys ??= [...this.values.keys()].sort();
    const out = this.sortedKeys.filter((k) => k.startsWith(prefix) && this.valueAt(k, block) !== null);
    this.stats.listKeys++;
    this.stats.keysListed += out.length;
    return out;
  }

  async readValues(keys: readonly string[], atHash: string): Promise<Map<string, string | null>> {
    const block = this.blockOf(atHash);
    this.stats.readValues++;
    this.stats.valuesRead += keys.length;
    return new Map(keys.map((k) => [k, this.valueAt(k, block)]));
  }

  async subscribe(keys: readonly string[], onChange: (changes: ReadonlyArray<readonly [string, string | null]>) => void): Promise<() => void> {
    const sub = { keys: new Set(keys), onChange };
    this.subscribers.add(sub);
    // Like state_subscribeStorage: the first notification carries the current values.
    onChange(keys.map((k) => [k, this.valueAt(k, this.head)] as const));
    return () => {
      this.subscribers.delete(sub);
    };
  }

  /** Number of live subscriptions (tests check the mirror does not leak them). */
  get subscriptionCount(): number {
    return this.subscribers.size;
  }
}
