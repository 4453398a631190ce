import { type AlbedoError, toAlbedoError } from '../core/faults.ts';
import type { Db } from '../persistence/db.ts';
import type { NewReveal } from '../persistence/submissions.ts';
import type { ChainClient } from './client.ts';
import { parseReveal, sha256Hex } from './reveal.ts';

/** @default 2000 (spec CHAIN_POLL_INTERVAL_S = 2) */
export const DEFAULT_CHAIN_POLL_MS = 2_000;
/** Hotkeys whose high-water mark is remembered; older entries fall back to the database's idempotency. @default 10000 */
export const DEFAULT_SEEN_CACHE = 10_000;

export interface ChainReaderOptions {
  readonly db: Db;
  readonly chain: ChainClient;
  readonly netuid: number;
  /** Reveals below this block never become submissions (CHAIN_START_BLOCK). @default 0 */
  readonly startBlock?: number;
  /** @default DEFAULT_CHAIN_POLL_MS */
  readonly pollMs?: number;
  readonly ingest: (reveal: NewReveal) => Promise<{ created: boolean }>;
  readonly onIngested?: (reveal: NewReveal, created: boolean) => void;
  readonly onError?: (e: AlbedoError, context: string) => void;
}

/**
 * Minimal chain reader of the pipeline spine: polls revealed commitments, parses them strictly
 * (chain/reveal.ts), records unparseable ones as ignored commits with a reason, and ingests valid
 * ones idempotently. It keeps a bounded per-hotkey high-water mark so old reveals are not
 * re-processed every poll (spec §9.17). Hotkey-swap and deregistration detection, backfill of the
 * used-hotkeys ledger and @polkadot/api reads belong to the chain issue.
 */
export class ChainReader {
  private readonly highWater = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly o: ChainReaderOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? DEFAULT_CHAIN_POLL_MS);
    this.timer.unref();
    void this.poll();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let ingested = 0;
    try {
      const reveals = (await this.o.chain.revealedCommitments(this.o.netuid)).slice().sort((a, b) => a.block - b.block);
      for (const c of reveals) {
        if (c.block < (this.o.startBlock ?? 0)) continue;
        if ((this.highWater.get(c.hotkey) ?? -1) >= c.block) continue;
        const parsed = parseReveal(c.bytes);
        const uid = await this.o.chain.uidOf(this.o.netuid, c.hotkey);
        if (!parsed.ok || uid === null) {
          const reason = parsed.ok ? 'hotkey not registered on the subnet' : `${parsed.code}: ${parsed.reason}`;
          await this.o.db.query(
            `INSERT INTO chain_commits (netuid, block_number, block_hash, uid, hotkey, payload_hash, ignored_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (netuid, hotkey, payload_hash) DO NOTHING`,
            [this.o.netuid, c.block, c.blockHash, uid ?? -1, c.hotkey, `ignored:${sha256Hex(c.bytes)}`, reason.slice(0, 500)],
          );
        } else {
          const reveal: NewReveal = {
            netuid: this.o.netuid,
            hotkey: c.hotkey,
            uid,
            blockNumber: c.block,
            blockHash: c.blockHash,
            repo: parsed.reveal.repo,
            digest: parsed.reveal.digest,
            raw: parsed.payload,
          };
          const { created } = await this.o.ingest(reveal);
          if (created) ingested++;
          this.o.onIngested?.(reveal, created);
        }
        this.remember(c.hotkey, c.block);
      }
    } catch (error) {
      this.o.onError?.(toAlbedoError(error), 'chain poll');
    } finally {
      this.running = false;
    }
    return ingested;
  }

  private remember(hotkey: string, block: number): void {
    this.highWater.delete(hotkey);
    this.highWater.set(hotkey, Math.max(block, this.highWater.get(hotkey) ?? -1));
    if (this.highWater.size > DEFAULT_SEEN_CACHE) this.highWater.delete(this.highWater.keys().next().value as string);
  }
}
