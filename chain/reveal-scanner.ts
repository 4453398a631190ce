/**
 * Turns the `RevealedCommitments(netuid, *)` map into the reveals not processed yet (spec/chain.md §3
 * step 5): mirrors the map incrementally, decodes only changed hotkeys' entries, and filters them by a
 * per-hotkey high-water mark. Pure of database and network: the chain reader feeds it a storage port,
 * the benchmark an in-memory one.
 */
import { LruMap } from '../core/lru.ts';
import { sha256Hex } from './reveal.ts';
import { type MirrorDiff, PrefixMirror, type RawStoragePort } from './storage-mirror.ts';

export interface RevealEntry {
  readonly hotkey: string;
  /** `reveal_block`. */
  readonly block: number;
  /** Revealed bytes (a SCALE string, §2.1). */
  readonly bytes: Uint8Array;
}

export interface RevealCodec {
  /** SS58 hotkey of a map key. */
  hotkeyOfKey(key: string): string;
  /** Entries of a `Vec<(Bytes, u64)>` value. */
  decodeEntries(valueHex: string): Array<{ bytes: Uint8Array; block: number }>;
}

/** Hotkeys whose high-water marks are remembered. @default 10000 */
export const DEFAULT_HIGH_WATER_CAPACITY = 10_000;

interface HighWater {
  block: number;
  /** sha256 of the payloads processed at exactly `block` (several reveals can share a block). */
  atBlock: Set<string>;
}

export class RevealScanner {
  private readonly mirror: PrefixMirror;
  private readonly highWater: LruMap<string, HighWater>;
  private lastUpserted: string[] = [];

  constructor(
    port: RawStoragePort,
    prefix: string,
    private readonly codec: RevealCodec,
    options: { fullResyncEvery?: number; subscribe?: boolean; highWaterCapacity?: number } = {},
  ) {
    this.mirror = new PrefixMirror(port, prefix, options);
    this.highWater = new LruMap(options.highWaterCapacity ?? DEFAULT_HIGH_WATER_CAPACITY);
  }

  get mirroredKeys(): number {
    return this.mirror.size;
  }

  /** Seeds a hotkey's mark from the database so a restart does not reprocess old reveals. */
  seed(hotkey: string, block: number): void {
    const current = this.highWater.get(hotkey);
    if (!current || current.block < block) this.highWater.set(hotkey, { block, atBlock: new Set() });
  }

  invalidate(): void {
    this.mirror.invalidate();
  }

  /**
   * Reveals at `atHash` that are newer than each hotkey's mark, oldest first. The marks advance only via
   * {@link markProcessed}, so a reveal whose database write failed is offered again next time.
   */
  async scan(atHash: string): Promise<{ reveals: RevealEntry[]; diff: MirrorDiff }> {
    const diff = await this.mirror.sync(atHash);
    this.lastUpserted = [...diff.upserted.keys()];
    const reveals: RevealEntry[] = [];
    for (const [key, value] of diff.upserted) {
      const hotkey = this.codec.hotkeyOfKey(key);
      const mark = this.highWater.get(hotkey);
      for (const entry of this.codec.decodeEntries(value)) {
        if (mark && (entry.block < mark.block || (entry.block === mark.block && mark.atBlock.has(sha256Hex(entry.bytes))))) continue;
        reveals.push({ hotkey, block: entry.block, bytes: entry.bytes });
      }
    }
    reveals.sort((a, b) => a.block - b.block || (a.hotkey < b.hotkey ? -1 : a.hotkey > b.hotkey ? 1 : 0));
    return { reveals, diff };
  }

  /** Records a reveal as done (written, or deliberately ignored). */
  markProcessed(reveal: RevealEntry): void {
    const mark = this.highWater.get(reveal.hotkey);
    if (!mark || reveal.block > mark.block) {
      this.highWater.set(reveal.hotkey, { block: reveal.block, atBlock: new Set([sha256Hex(reveal.bytes)]) });
    } else if (reveal.block === mark.block) {
      mark.atBlock.add(sha256Hex(reveal.bytes));
    }
  }

  /**
   * Processing of the last scan's reveals failed part-way: the mirror already holds their values, so
   * forget those keys and the next scan offers every reveal not yet marked processed again.
   */
  retryLater(): void {
    this.mirror.forget(this.lastUpserted);
  }

  close(): void {
    this.mirror.close();
  }
}
