/**
 * The chain reader actor (spec/chain.md §3): every poll it reads the chain at `best − lag`, keeps the
 * metagraph snapshot, detects hotkey swaps and deregistrations, and turns new `v7` reveals into
 * submissions (T1) — idempotently, so re-reading a block range changes nothing.
 *
 * Incremental by construction: storage is mirrored per key and only changed keys are read and decoded
 * (chain/storage-mirror.ts); all caches are bounded.
 */
import { type AlbedoError, toAlbedoError } from '../core/faults.ts';
import { LruMap } from '../core/lru.ts';
import { type Db, inTx } from '../persistence/db.ts';
import type { NewReveal } from '../persistence/submissions.ts';
import { MetagraphMirror, type Neuron } from './metagraph.ts';
import { type ParseRevealOptions, parseReveal, sha256Hex } from './reveal.ts';
import { type RevealEntry, RevealScanner } from './reveal-scanner.ts';
import { ChainConfigError } from './provider.ts';
import type { RawStoragePort } from './storage-mirror.ts';

/** @default 2000 (CHAIN_POLL_INTERVAL_S = 2) */
export const DEFAULT_CHAIN_POLL_MS = 2_000;
/** @default 3 (CHAIN_SCAN_LAG_BLOCKS) */
export const DEFAULT_SCAN_LAG_BLOCKS = 3;
/** Hotkeys remembered for "warn once" and coldkey lookups. @default 10000 */
export const DEFAULT_HOTKEY_CACHE = 10_000;

/** What the reader needs from the chain; `Subtensor` implements it (see `subtensorReaderSource`). */
export interface ChainReaderSource {
  bestBlock(): Promise<{ number: number; hash: string }>;
  blockHash(n: number): Promise<string>;
  /** `Owner(hotkey)` at block `n`, null for the zero account. */
  ownerOf(hotkey: string, atBlock: number): Promise<string | null>;
  readonly storage: RawStoragePort;
  /** `revealed` is null on runtimes without `RevealedCommitments` (then only the raw fallback can read). */
  readonly prefixes: { revealed: string | null; commitmentOf: string; keys: string; blockAtRegistration: string };
  readonly revealCodec: { hotkeyOfKey(key: string): string; decodeEntries(hex: string): Array<{ bytes: Uint8Array; block: number }> };
  /** `CommitmentOf` value → its `Raw` fields as reveals at `Registration.block` (raw fallback, §2.1). */
  readonly rawCommitmentCodec: { hotkeyOfKey(key: string): string; decodeEntries(hex: string): Array<{ bytes: Uint8Array; block: number }> };
  readonly metagraphCodec: { uidOfKey(key: string): number; hotkeyOfValue(hex: string): string | null; blockOfValue(hex: string): number };
  /** Registers a callback for reconnects (the mirrors re-read everything). */
  onReconnect?(listener: () => void): () => void;
}

export interface ChainReaderOptions {
  readonly db: Db;
  readonly source: ChainReaderSource;
  readonly netuid: number;
  /** Reveals below this block never become submissions (CHAIN_START_BLOCK). @default 0 */
  readonly startBlock?: number;
  /** Backfill `used_hotkeys` from reveals at or below this block and ignore them (IGNORE_COMMITS_TO_BLOCK). @default 0 (off) */
  readonly ignoreCommitsToBlock?: number;
  /** @default DEFAULT_SCAN_LAG_BLOCKS */
  readonly scanLagBlocks?: number;
  /** @default DEFAULT_CHAIN_POLL_MS */
  readonly pollMs?: number;
  /** Also treat `Raw` fields of `CommitmentOf` as reveals (CHAIN_READ_RAW_COMMITMENTS, test chains). @default false */
  readonly readRawCommitments?: boolean;
  /** Syncs between full re-reads of the mirrored maps. */
  readonly fullResyncEvery?: number;
  readonly ingest: (reveal: NewReveal) => Promise<{ created: boolean }>;
  readonly onIngested?: (reveal: NewReveal, created: boolean) => void;
  readonly onError?: (e: AlbedoError, context: string) => void;
  readonly log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export interface PollResult {
  /** Block the state was read at (`best − lag`), or null when the best block had not moved. */
  readonly atBlock: number | null;
  readonly ingested: number;
  readonly ignored: number;
  readonly swaps: number;
}

export class ChainReader {
  private readonly scanners: Array<{ scanner: RevealScanner; parse: ParseRevealOptions }>;
  private readonly metagraph: MetagraphMirror;
  private readonly warnedUnregistered: LruMap<string, true>;
  private readonly coldkeys: LruMap<string, string | null>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PollResult> | null = null;
  private lastBest = -1;
  private seeded = false;
  private readonly stopReconnect: (() => void) | undefined;

  constructor(private readonly o: ChainReaderOptions) {
    const s = o.source;
    const mirrorOptions = { fullResyncEvery: o.fullResyncEvery };
    if (s.prefixes.revealed === null && !o.readRawCommitments) {
      throw new ChainConfigError('this runtime has no Commitments.RevealedCommitments: set CHAIN_READ_RAW_COMMITMENTS=1 to read raw commitments (test chains only)');
    }
    this.scanners = s.prefixes.revealed === null ? [] : [{ scanner: new RevealScanner(s.storage, s.prefixes.revealed, s.revealCodec, mirrorOptions), parse: {} }];
    if (o.readRawCommitments) {
      this.scanners.push({ scanner: new RevealScanner(s.storage, s.prefixes.commitmentOf, s.rawCommitmentCodec, mirrorOptions), parse: { framing: 'raw' } });
    }
    this.metagraph = new MetagraphMirror(s.storage, { keys: s.prefixes.keys, blockAtRegistration: s.prefixes.blockAtRegistration }, s.metagraphCodec, mirrorOptions);
    this.warnedUnregistered = new LruMap(DEFAULT_HOTKEY_CACHE);
    this.coldkeys = new LruMap(DEFAULT_HOTKEY_CACHE);
    this.stopReconnect = s.onReconnect?.(() => this.invalidate());
  }

  start(): void {
    const tick = () => {
      void this.poll().finally(() => {
        this.timer = setTimeout(tick, this.o.pollMs ?? DEFAULT_CHAIN_POLL_MS);
        this.timer.unref();
      });
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopReconnect?.();
    for (const { scanner } of this.scanners) scanner.close();
    this.metagraph.close();
  }

  /** Forces full re-reads (after a reconnect the subscriptions may have missed changes). */
  invalidate(): void {
    for (const { scanner } of this.scanners) scanner.invalidate();
    this.metagraph.invalidate();
    this.lastBest = -1;
  }

  /** One poll; concurrent calls share the running one. Never throws (errors go to `onError`). */
  poll(): Promise<PollResult> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pollOnce(): Promise<PollResult> {
    const result = { atBlock: null as number | null, ingested: 0, ignored: 0, swaps: 0 };
    try {
      if (!this.seeded) await this.seedHighWater();
      const best = await this.o.source.bestBlock();
      if (best.number === this.lastBest) return result;
      const at = Math.max(best.number - (this.o.scanLagBlocks ?? DEFAULT_SCAN_LAG_BLOCKS), 0);
      const atHash = await this.o.source.blockHash(at);
      result.atBlock = at;
      if (await this.metagraph.sync(atHash)) {
        this.coldkeys.clear();
        result.swaps = await this.reconcileMetagraph(at);
      }
      const neurons = this.metagraph.byHotkey();
      for (const { scanner, parse } of this.scanners) {
        const { reveals } = await scanner.scan(atHash);
        for (const reveal of reveals) {
          try {
            const outcome = await this.process(reveal, at, neurons, parse);
            if (outcome === 'ingested') result.ingested++;
            if (outcome === 'ignored') result.ignored++;
            scanner.markProcessed(reveal);
          } catch (error) {
            // Offer it (and everything after it) again on the next poll; order is preserved.
            scanner.retryLater();
            throw error;
          }
        }
      }
      this.lastBest = best.number;
    } catch (error) {
      this.o.onError?.(toAlbedoError(error), 'chain poll');
    }
    return result;
  }

  /** Marks from the database so a restart does not re-offer every reveal on chain. */
  private async seedHighWater(): Promise<void> {
    const { rows } = await this.o.db.query<{ hotkey: string; block: string }>('SELECT hotkey, max(block_number)::text AS block FROM chain_commits WHERE netuid = $1 GROUP BY hotkey', [this.o.netuid]);
    // Seeding to block − 1 re-offers the newest block's reveals; the database writes are idempotent.
    for (const row of rows) for (const { scanner } of this.scanners) scanner.seed(row.hotkey, Number(row.block) - 1);
    this.seeded = true;
  }

  private async process(reveal: RevealEntry, at: number, neurons: ReadonlyMap<string, Neuron>, parse: ParseRevealOptions): Promise<'ingested' | 'ignored' | 'skipped'> {
    const o = this.o;
    if (reveal.block < (o.startBlock ?? 0)) return 'skipped';
    const ignoreTo = o.ignoreCommitsToBlock ?? 0;
    if (ignoreTo > 0 && reveal.block <= ignoreTo) {
      await o.db.query(
        `INSERT INTO used_hotkeys (hotkey, netuid, block_number, raw_payload, source) VALUES ($1, $2, $3, $4, 'backfill') ON CONFLICT (hotkey) DO NOTHING`,
        [reveal.hotkey, o.netuid, reveal.block, Buffer.from(reveal.bytes).toString('utf8').replaceAll('\u0000', '').slice(0, 2000)],
      );
      return 'skipped';
    }
    const neuron = neurons.get(reveal.hotkey);
    if (!neuron) {
      if (!this.warnedUnregistered.has(reveal.hotkey)) {
        this.warnedUnregistered.set(reveal.hotkey, true);
        o.log?.('warn', `reveal by ${reveal.hotkey} at block ${reveal.block} ignored: hotkey not registered on netuid ${o.netuid} at block ${at}`);
      }
      await this.recordIgnored(reveal, -1, `hotkey not registered on netuid ${o.netuid} at block ${at}`);
      return 'ignored';
    }
    const parsed = parseReveal(reveal.bytes, parse);
    if (!parsed.ok) {
      await this.recordIgnored(reveal, neuron.uid, `${parsed.code}: ${parsed.reason}`);
      return 'ignored';
    }
    const blockHash = (await o.source.blockHash(reveal.block)).toLowerCase();
    const newReveal: NewReveal = {
      netuid: o.netuid,
      hotkey: reveal.hotkey,
      uid: neuron.uid,
      blockNumber: reveal.block,
      blockHash,
      repo: parsed.reveal.repo,
      digest: parsed.reveal.digest,
      raw: parsed.payload,
      coldkey: await this.coldkeyOf(reveal.hotkey, at),
      registrationBlock: neuron.registrationBlock,
    };
    const { created } = await o.ingest(newReveal);
    o.onIngested?.(newReveal, created);
    return created ? 'ingested' : 'skipped';
  }

  private async coldkeyOf(hotkey: string, at: number): Promise<string | null> {
    if (this.coldkeys.has(hotkey)) return this.coldkeys.get(hotkey) ?? null;
    const owner = await this.o.source.ownerOf(hotkey, at);
    this.coldkeys.set(hotkey, owner);
    return owner;
  }

  private async recordIgnored(reveal: RevealEntry, uid: number, reason: string): Promise<void> {
    const blockHash = await this.o.source.blockHash(reveal.block);
    await this.o.db.query(
      `INSERT INTO chain_commits (netuid, block_number, block_hash, uid, hotkey, payload_hash, ignored_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (netuid, hotkey, payload_hash) DO NOTHING`,
      [this.o.netuid, reveal.block, blockHash.toLowerCase(), uid, reveal.hotkey, `ignored:${sha256Hex(reveal.bytes)}`, reason.replaceAll('\u0000', '').slice(0, 500)],
    );
  }

  /**
   * Swap detection (spec §3.1) and deregistrations against the latest `miners` row per uid, then
   * `miners.registration_block` for every (hotkey, uid) of the snapshot. Returns confirmed swaps.
   */
  private async reconcileMetagraph(at: number): Promise<number> {
    const o = this.o;
    const snapshot = this.metagraph.neurons();
    const { rows: prior } = await o.db.query<{ uid: number; hotkey: string; registration_block: string | null }>(
      `SELECT DISTINCT ON (uid) uid, hotkey, registration_block::text FROM miners WHERE netuid = $1 AND uid IS NOT NULL ORDER BY uid, updated_at DESC, id`,
      [o.netuid],
    );
    const priorByUid = new Map(prior.map((p) => [p.uid, p]));
    let swaps = 0;
    for (const n of snapshot) {
      const p = priorByUid.get(n.uid);
      if (!p || p.hotkey === n.hotkey) continue;
      const priorReg = p.registration_block === null ? null : Number(p.registration_block);
      if (priorReg !== null && priorReg === n.registrationBlock) {
        // Same uid, same registration block, new hotkey: a swap candidate — confirmed when the old hotkey has no owner.
        if ((await o.source.ownerOf(p.hotkey, at)) !== null) continue;
        if (await this.recordSwap(n, p.hotkey, at)) swaps++;
      } else {
        await o.db.query(
          `INSERT INTO events (event_type, severity, message, data, dedup_key) VALUES ('hotkey_deregistered', 'WARN', $1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING`,
          [
            `uid ${n.uid} re-registered: hotkey ${p.hotkey} (registered at block ${priorReg ?? 'unknown'}) replaced by ${n.hotkey} (block ${n.registrationBlock})`,
            { uid: n.uid, old_hotkey: p.hotkey, new_hotkey: n.hotkey, old_registration_block: priorReg, registration_block: n.registrationBlock, at_block: at },
            `dereg:${o.netuid}:${n.uid}:${p.hotkey}:${priorReg ?? ''}`,
          ],
        );
        o.log?.('info', `uid ${n.uid}: ${p.hotkey} deregistered, ${n.hotkey} registered at block ${n.registrationBlock}`);
      }
    }
    if (snapshot.length > 0) {
      await o.db.query(
        `UPDATE miners m SET registration_block = s.reg, updated_at = now()
         FROM unnest($1::text[], $2::int[], $3::bigint[]) AS s(hotkey, uid, reg)
         WHERE m.hotkey = s.hotkey AND m.uid = s.uid AND m.registration_block IS DISTINCT FROM s.reg`,
        [snapshot.map((n) => n.hotkey), snapshot.map((n) => n.uid), snapshot.map((n) => n.registrationBlock)],
      );
    }
    return swaps;
  }

  private async recordSwap(n: Neuron, oldHotkey: string, at: number): Promise<boolean> {
    const o = this.o;
    const message = `hotkey swap detected: uid ${n.uid} BEFORE hotkey=${oldHotkey} BlockAtRegistration=${n.registrationBlock} | AFTER hotkey=${n.hotkey} BlockAtRegistration=${n.registrationBlock} <- identical, no re-registration -> swap_hotkey`;
    const detection = { uid: n.uid, old_hotkey: oldHotkey, new_hotkey: n.hotkey, registration_block: n.registrationBlock };
    return inTx(o.db, async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO used_hotkeys (hotkey, netuid, block_number, raw_payload, source) VALUES ($1, $2, $3, $4, 'swap') ON CONFLICT (hotkey) DO NOTHING`,
        [n.hotkey, o.netuid, at, JSON.stringify(detection)],
      );
      await tx.query(
        `INSERT INTO events (event_type, severity, message, data, dedup_key) VALUES ('hotkey_swap_detected', 'ERROR', $1, $2, $3) ON CONFLICT (dedup_key) DO NOTHING`,
        [message, { ...detection, at_block: at }, `swap:${o.netuid}:${n.uid}:${oldHotkey}:${n.hotkey}`],
      );
      // The new hotkey inherits the uid's row history for the next comparison.
      await tx.query(
        `INSERT INTO miners (hotkey, uid, netuid, registration_block) VALUES ($1, $2, $3, $4)
         ON CONFLICT (hotkey) DO UPDATE SET uid = EXCLUDED.uid, registration_block = EXCLUDED.registration_block, updated_at = now()`,
        [n.hotkey, n.uid, o.netuid, n.registrationBlock],
      );
      o.log?.('error', message);
      return (inserted.rowCount ?? 0) > 0;
    });
  }
}
