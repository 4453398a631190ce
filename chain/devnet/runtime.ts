/**
 * The LOCAL STAND-IN dev chain (`albedo-devnet`): a single-author, in-process chain that serves the
 * recorded subtensor spec-381 metadata and keeps its state as SCALE values encoded through that
 * metadata's registry, so a real `ApiPromise` runs against it unchanged (spec/chain.md §10 tier 2).
 *
 * One block = initialization (System bookkeeping, drand pulses, timelock reveals) → timestamp inherent
 * (extrinsic 0) → pool transactions in submission order (nonce order per sender) → `System.Events`.
 * Block hashes are `blake2_256(SCALE(header))` of headers built by the registry; the state root is a
 * chained blake2 of each block's sorted storage changes. Everything here is synchronous: RPC handlers,
 * block production and persistence never interleave.
 *
 * Fees are not charged (no `TransactionPayment` model): transactions only bump the nonce and do what
 * their call does. Events carry zero weights.
 */
import type { Header } from '@polkadot/types/interfaces';
import type { Codec } from '@polkadot/types/types';
import { compactToU8a, hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, cryptoWaitReady } from '@polkadot/util-crypto';
import { type DecoratedRuntime, recordedRuntime, readRecordedMetadata } from '../metadata.ts';
import { type BeaconOptions, type DevnetBeacon, createBeacon } from './beacon.ts';
import { type GenesisOptions, type ResolvedGenesis, genesisFingerprint, resolveGenesis, writeGenesisState } from './genesis.ts';
import { type ModuleErrorRef, type Phase, RuntimeCodec, TypedState, codecNumber } from './runtime-codec.ts';
import { revealTimelockedCommitments } from './runtime-commitments.ts';
import { DispatchFailure, type PalletConfig, type PalletCtx, readAccount, writeAccount } from './runtime-context.ts';
import { callRefusal, dispatchCall } from './runtime-dispatch.ts';
import { storeDuePulses } from './runtime-drand.ts';
import { BLOCK_HASH_COUNT, INVALID_TX, PoolError, type VerifiedExtrinsic, decodeExtrinsic, invalidTransaction, verifyExtrinsic } from './runtime-extrinsics.ts';
import { COMPACT_EVERY_BLOCKS, DataFileError, type PersistedChain, appendBlock, readDataFile, writeDataFile } from './runtime-persistence.ts';
import { Overlay, StateHistory } from './runtime-storage.ts';
import * as subtensor from './runtime-subtensor.ts';

/** Blocks the finalized head trails the best head. */
export const DEFAULT_FINALITY_LAG = 2;
/** Blocks whose state stays queryable (`api.at(hash)`); older ones answer like a pruned node. */
export const DEFAULT_STATE_HISTORY = 256;
/** See {@link PalletConfig.maxPulsesPerBlock}. */
export const DEFAULT_MAX_PULSES_PER_BLOCK = 32;
/** See {@link PalletConfig.maxStoredPulses}. */
export const DEFAULT_MAX_STORED_PULSES = 10_000;
/** Transactions the pool holds at most (ready + future). */
export const DEFAULT_POOL_LIMIT = 4096;
/** Transactions per block at most (besides the timestamp inherent). */
export const MAX_EXTRINSICS_PER_BLOCK = 1024;
/** How long an included transaction's hash stays banned from resubmission (substrate: 30 min). */
export const TX_BAN_MS = 30 * 60_000;

export interface RuntimeOptions {
  readonly genesis?: GenesisOptions;
  /** @default { kind: 'local' } */
  readonly beacon?: BeaconOptions;
  /** @default DEFAULT_FINALITY_LAG (0 = every block final at once) */
  readonly finalityLag?: number;
  /** @default DEFAULT_STATE_HISTORY */
  readonly stateHistory?: number;
  /** Wall clock in ms; chain time is this plus the advance offset. @default Date.now */
  readonly now?: () => number;
  /** Persist blocks here and resume from it on start (see runtime-persistence.ts). */
  readonly dataFile?: string;
  readonly maxPulsesPerBlock?: number;
  readonly maxStoredPulses?: number;
  readonly poolLimit?: number;
  /** Operational log (default: stderr). */
  readonly log?: (line: string) => void;
  /** Debug log, e.g. undecryptable commitments (default: stderr when `ALBEDO_DEVNET_DEBUG` is set). */
  readonly debug?: (line: string) => void;
}

export interface BlockRecord {
  readonly number: number;
  readonly hash: string;
  readonly parentHash: string;
  readonly stateRoot: string;
  readonly extrinsicsRoot: string;
  /** SCALE header; `hash = blake2_256(headerHex)`. */
  readonly headerHex: string;
  readonly extrinsics: readonly string[];
}

/** Header as substrate's JSON-RPC serialises it. */
export interface HeaderJson {
  readonly parentHash: string;
  readonly number: string;
  readonly stateRoot: string;
  readonly extrinsicsRoot: string;
  readonly digest: { readonly logs: readonly string[] };
}

/** `author_extrinsicUpdate` payloads (substrate's `TransactionStatus` JSON). */
export type TxStatus = 'future' | 'ready' | { readonly inBlock: string } | { readonly finalized: string } | 'invalid' | 'dropped';

export type RuntimeNotification =
  | { readonly type: 'block'; readonly block: BlockRecord; readonly changes: ReadonlyMap<string, string | null> }
  | { readonly type: 'finalized'; readonly block: BlockRecord }
  | { readonly type: 'tx'; readonly hash: string; readonly status: TxStatus };

export type RuntimeErrorCode = 'unknown_block' | 'state_pruned' | 'bad_argument';

/** A query the chain cannot answer (mapped to JSON-RPC 4003 / -32602 by the node). */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  readonly code: RuntimeErrorCode;

  constructor(code: RuntimeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

interface PoolEntry extends VerifiedExtrinsic {
  status: 'ready' | 'future';
}

const ZERO_HASH = `0x${'00'.repeat(32)}`;

function defaultDebug(): (line: string) => void {
  return process.env.ALBEDO_DEVNET_DEBUG ? (line) => process.stderr.write(`[albedo-devnet:debug] ${line}\n`) : () => undefined;
}

function blake2Hex(data: Uint8Array): string {
  return u8aToHex(blake2AsU8a(data, 256));
}

/** Deterministic state commitment: `blake2(parentRoot ‖ SCALE(Vec<(key, Option<value>)>))`, keys sorted. */
function stateRoot(parentRoot: string, changes: ReadonlyMap<string, string | null>): string {
  const sorted = [...changes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: Uint8Array[] = [hexToU8a(parentRoot), compactToU8a(sorted.length)];
  for (const [key, value] of sorted) {
    const k = hexToU8a(key);
    parts.push(compactToU8a(k.length), k);
    if (value === null) parts.push(Uint8Array.of(0));
    else {
      const v = hexToU8a(value);
      parts.push(Uint8Array.of(1), compactToU8a(v.length), v);
    }
  }
  return blake2Hex(u8aConcat(...parts));
}

/** `blake2(SCALE(Vec<Extrinsic>))` — stands in for the extrinsics trie root. */
function extrinsicsRoot(extrinsics: readonly string[]): string {
  return blake2Hex(u8aConcat(compactToU8a(extrinsics.length), ...extrinsics.map((e) => hexToU8a(e))));
}

export function headerJson(block: BlockRecord): HeaderJson {
  return {
    parentHash: block.parentHash,
    number: `0x${block.number.toString(16)}`,
    stateRoot: block.stateRoot,
    extrinsicsRoot: block.extrinsicsRoot,
    digest: { logs: [] },
  };
}

export class DevnetRuntime {
  readonly runtime: DecoratedRuntime;
  readonly codec: RuntimeCodec;
  readonly metadataBytes: Uint8Array;
  readonly beacon: DevnetBeacon;
  readonly genesis: ResolvedGenesis;
  readonly finalityLag: number;
  readonly stateHistory: number;
  readonly dataFile: string | undefined;
  readonly #config: PalletConfig;
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  readonly #debug: (line: string) => void;
  readonly #poolLimit: number;
  readonly #history = new StateHistory();
  readonly #blocks: BlockRecord[] = [];
  readonly #byHash = new Map<string, number>();
  readonly #pool = new Map<string, PoolEntry>();
  readonly #banned = new Map<string, number>();
  readonly #listeners = new Set<(n: RuntimeNotification) => void>();
  readonly #poolWaiters = new Set<{ count: number; resolve: () => void }>();
  #finalized = 0;
  #historyFloor = 0;
  #timeOffsetMs = 0;
  #appendedSinceCompact = 0;
  #closed = false;
  #pendingRawWrites: ReadonlyArray<readonly [string, string | null]> = [];

  /** Builds (or resumes from `dataFile`) a chain. Waits for the sr25519 wasm once. */
  static async create(options: RuntimeOptions = {}): Promise<DevnetRuntime> {
    await cryptoWaitReady();
    return new DevnetRuntime(options);
  }

  private constructor(options: RuntimeOptions) {
    this.runtime = recordedRuntime();
    this.codec = new RuntimeCodec(this.runtime);
    this.metadataBytes = readRecordedMetadata('devnetV16Spec381');
    this.beacon = createBeacon(options.beacon);
    this.genesis = resolveGenesis(options.genesis);
    this.finalityLag = options.finalityLag ?? DEFAULT_FINALITY_LAG;
    this.stateHistory = options.stateHistory ?? DEFAULT_STATE_HISTORY;
    if (!Number.isSafeInteger(this.finalityLag) || this.finalityLag < 0) throw new RangeError(`finalityLag must be a non-negative integer: ${this.finalityLag}`);
    if (!Number.isSafeInteger(this.stateHistory) || this.stateHistory < 1) throw new RangeError(`stateHistory must be a positive integer: ${this.stateHistory}`);
    this.#config = {
      hotkeySwapCostRao: this.genesis.hotkeySwapCostRao,
      maxPulsesPerBlock: options.maxPulsesPerBlock ?? DEFAULT_MAX_PULSES_PER_BLOCK,
      maxStoredPulses: options.maxStoredPulses ?? DEFAULT_MAX_STORED_PULSES,
    };
    for (const [name, value] of Object.entries({ maxPulsesPerBlock: this.#config.maxPulsesPerBlock, maxStoredPulses: this.#config.maxStoredPulses, poolLimit: options.poolLimit ?? 1 })) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer: ${value}`);
    }
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#debug = options.debug ?? defaultDebug();
    this.#poolLimit = options.poolLimit ?? DEFAULT_POOL_LIMIT;
    this.dataFile = options.dataFile;

    const genesis = this.#buildGenesis();
    const persisted = this.dataFile === undefined ? null : readDataFile(this.dataFile);
    if (persisted === null) {
      this.#history.commit(0, genesis.changes);
      this.#pushBlock(genesis.block);
    } else {
      this.#restore(persisted, genesis.block.hash);
    }
    this.#finalized = Math.max(0, this.best().number - this.finalityLag);
    if (this.dataFile !== undefined) this.#compact();
  }

  // ---- identity ---------------------------------------------------------------------------------

  get registry(): DecoratedRuntime['registry'] {
    return this.runtime.registry;
  }

  get specVersion(): number {
    return this.runtime.specVersion;
  }

  get genesisHash(): string {
    return (this.#blocks[0] as BlockRecord).hash;
  }

  /** `state_getRuntimeVersion` JSON (from the metadata's `System.Version` constant). */
  runtimeVersionJson(): Record<string, unknown> {
    const version = this.runtime.decorated.consts.system?.version as Codec | undefined;
    if (version === undefined) throw new Error('metadata has no System.Version constant');
    const json = version.toJSON() as Record<string, unknown>;
    return { ...json, stateVersion: json.systemVersion ?? 1 };
  }

  // ---- blocks -----------------------------------------------------------------------------------

  best(): BlockRecord {
    return this.#blocks[this.#blocks.length - 1] as BlockRecord;
  }

  finalized(): BlockRecord {
    return this.#blocks[this.#finalized] as BlockRecord;
  }

  blockByNumber(number: number): BlockRecord | undefined {
    return this.#blocks[number];
  }

  blockByHash(hash: string): BlockRecord | undefined {
    const n = this.#byHash.get(hash.toLowerCase());
    return n === undefined ? undefined : this.#blocks[n];
  }

  /** Oldest block whose state is still queryable. */
  oldestStateBlock(): number {
    return Math.max(this.#historyFloor, this.best().number - this.stateHistory + 1, 0);
  }

  /** Block number for a state query at `hash` (best when omitted); throws {@link RuntimeError}. */
  stateBlock(hash?: string | null): number {
    if (hash === undefined || hash === null) return this.best().number;
    const block = this.blockByHash(hash);
    if (block === undefined) throw new RuntimeError('unknown_block', `Client error: UnknownBlock: Header was not found in the database: ${hash}`);
    if (block.number < this.oldestStateBlock()) throw new RuntimeError('state_pruned', `Client error: UnknownBlock: State already discarded for ${hash}`);
    return block.number;
  }

  // ---- state ------------------------------------------------------------------------------------

  getStorage(key: string, at?: string | null): string | null {
    return this.#history.get(key.toLowerCase(), this.stateBlock(at));
  }

  keysPaged(prefix: string, count: number, startKey?: string | null, at?: string | null): string[] {
    return this.#history.keysAt(prefix.toLowerCase(), this.stateBlock(at), count, startKey?.toLowerCase() ?? undefined);
  }

  /** Typed read through the registry (tests, admin): `null` when absent. */
  read(pallet: Parameters<TypedState['get']>[0], item: string, args: readonly unknown[] = [], at?: string): Codec | null {
    const block = this.stateBlock(at);
    const view = this.#history.view(block);
    return new TypedState(this.codec, { ...view, set: () => undefined }).get(pallet, item, args);
  }

  /** Account nonce in the best state. */
  accountNonce(account: Uint8Array): number {
    return readAccount(this.#bestState(), account).nonce;
  }

  /** `system_accountNextIndex`: the state nonce, advanced past the sender's consecutive pool entries. */
  nextIndex(account: Uint8Array): number {
    const signerHex = u8aToHex(account);
    const nonces = new Set<number>();
    for (const entry of this.#pool.values()) if (entry.signerHex === signerHex) nonces.add(entry.nonce);
    let next = this.accountNonce(account);
    while (nonces.has(next)) next++;
    return next;
  }

  /** Chain time in ms: wall clock plus the offset `advanceTime` accumulated. */
  chainTimeMs(): number {
    return this.#now() + this.#timeOffsetMs;
  }

  /** Moves chain time forward (tests make drand rounds pass without sleeping). */
  advanceTime(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RuntimeError('bad_argument', `advanceSeconds must be a non-negative number: ${seconds}`);
    this.#timeOffsetMs += Math.round(seconds * 1000);
  }

  #bestState(): TypedState {
    const view = this.#history.view(this.best().number);
    return new TypedState(this.codec, { ...view, set: () => undefined });
  }

  // ---- pool -------------------------------------------------------------------------------------

  /**
   * `author_submitExtrinsic`: validates and pools a signed extrinsic; returns its hash and whether it can
   * go into the next block (`ready`) or waits for a lower nonce (`future`). Throws {@link PoolError}.
   */
  submit(hex: string): { hash: string; status: 'ready' | 'future' } {
    if (this.#closed) throw new PoolError(1016, 'Immediately Dropped', 'The node is shutting down');
    let bytes: Uint8Array;
    try {
      bytes = hexToU8a(hex);
    } catch {
      throw new PoolError(1001, 'Extrinsic has invalid format', 'Could not decode: not hex');
    }
    const hash = blake2Hex(bytes);
    this.#pruneBans();
    if (this.#banned.has(hash)) throw new PoolError(1012, 'Transaction is temporarily banned');
    if (this.#pool.has(hash)) throw new PoolError(1013, 'Transaction Already Imported');
    const ext = decodeExtrinsic(this.codec, u8aToHex(bytes));
    const best = this.best();
    const verified = verifyExtrinsic(this.codec, ext, {
      specVersion: this.runtime.specVersion,
      transactionVersion: this.runtime.transactionVersion,
      genesisHash: this.genesisHash,
      currentNumber: best.number + 1,
      blockHash: (n) => this.#blocks[n]?.hash ?? null,
    });
    const refusal = callRefusal(verified.call, this.#log);
    if (refusal !== null) throw refusal;
    const stateNonce = this.accountNonce(verified.signer);
    if (verified.nonce < stateNonce) throw invalidTransaction(INVALID_TX.stale);
    for (const entry of this.#pool.values()) {
      if (entry.signerHex === verified.signerHex && entry.nonce === verified.nonce) {
        throw new PoolError(1014, 'Priority is too low', 'The transaction has too low priority to replace another transaction already in the pool.');
      }
    }
    if (this.#pool.size >= this.#poolLimit) throw new PoolError(1016, 'Immediately Dropped', "The transaction couldn't enter the pool because of the limit");
    const status = verified.nonce <= this.nextIndex(verified.signer) ? 'ready' : 'future';
    this.#pool.set(verified.hash, { ...verified, status });
    for (const waiter of [...this.#poolWaiters]) {
      if (this.#pool.size >= waiter.count) {
        this.#poolWaiters.delete(waiter);
        waiter.resolve();
      }
    }
    return { hash: verified.hash, status };
  }

  /** Extrinsics waiting in the pool (hex), submission order. */
  pendingExtrinsics(): string[] {
    return [...this.#pool.values()].map((e) => e.hex);
  }

  /** Resolves once at least `count` transactions wait in the pool (tests: submit, then produce). */
  whenPending(count = 1): Promise<void> {
    return new Promise((resolve) => {
      if (this.#pool.size >= count) resolve();
      else this.#poolWaiters.add({ count, resolve });
    });
  }

  #pruneBans(): void {
    const now = this.#now();
    for (const [hash, until] of this.#banned) if (until <= now) this.#banned.delete(hash);
  }

  // ---- notifications ----------------------------------------------------------------------------

  /** Registers a listener for blocks, finality and transaction status; returns the unsubscribe. */
  subscribe(listener: (n: RuntimeNotification) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(n: RuntimeNotification): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(n);
      } catch (e) {
        this.#log(`[albedo-devnet] listener failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
  }

  // ---- block production -------------------------------------------------------------------------

  /** Produces `count` blocks (optionally advancing chain time first); returns them. */
  produceBlocks(count = 1, options: { advanceSeconds?: number } = {}): BlockRecord[] {
    if (!Number.isSafeInteger(count) || count < 1) throw new RuntimeError('bad_argument', `count must be a positive integer: ${count}`);
    if (this.#closed) throw new RuntimeError('bad_argument', 'the dev chain is closed');
    if (options.advanceSeconds !== undefined) this.advanceTime(options.advanceSeconds);
    const out: BlockRecord[] = [];
    for (let i = 0; i < count; i++) out.push(this.#produceBlock());
    return out;
  }

  /**
   * `dev_setStorage`: produces one block that also applies raw key/value writes (after the block's
   * initialization, before its extrinsics). For tests that need a state no extrinsic can reach, e.g. a
   * changed subnet hyperparameter. Values must be valid SCALE for their keys; nothing checks that.
   */
  produceBlockWithStorage(changes: ReadonlyArray<readonly [string, string | null]>): BlockRecord {
    if (this.#closed) throw new RuntimeError('bad_argument', 'the dev chain is closed');
    this.#pendingRawWrites = changes;
    try {
      return this.#produceBlock();
    } finally {
      this.#pendingRawWrites = [];
    }
  }

  #ctx(state: TypedState, block: number, nowMs: number, sink: Uint8Array[], phase: Phase): PalletCtx {
    return {
      state,
      codec: this.codec,
      block,
      nowMs,
      beacon: this.beacon,
      config: this.#config,
      emit: (pallet, event, args) => sink.push(this.codec.eventRecord(phase, this.codec.encodeEvent(pallet, event, args))),
      debug: this.#debug,
    };
  }

  #dispatchInfo(kind: 'Normal' | 'Mandatory'): Record<string, unknown> {
    return { weight: { refTime: 0, proofSize: 0 }, class: kind, paysFee: 'Yes' };
  }

  #dispatchError(e: unknown, hash: string): unknown {
    if (e instanceof DispatchFailure) {
      let ref: ModuleErrorRef;
      try {
        ref = this.codec.moduleError(e.pallet, e.error);
      } catch (err) {
        this.#log(`[albedo-devnet] BUG: ${(err as Error).message}`);
        return 'Other';
      }
      return { Module: { index: ref.index, error: ref.error } };
    }
    this.#log(`[albedo-devnet] BUG: dispatch of ${hash} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 'Other';
  }

  #produceBlock(): BlockRecord {
    const parent = this.best();
    const number = parent.number + 1;
    const overlay = new Overlay(this.#history.view(parent.number));
    const state = new TypedState(this.codec, overlay);
    const lastTimestamp = Number(state.getOrDefault('Timestamp', 'Now').toJSON());
    const nowMs = Math.max(this.chainTimeMs(), lastTimestamp + 1);
    const records: Uint8Array[] = [];

    // Initialization: System bookkeeping, then the pallets' block-start hooks.
    state.set('System', 'Number', [], number);
    state.set('System', 'ParentHash', [], parent.hash);
    state.set('System', 'BlockHash', [parent.number], parent.hash);
    if (parent.number - BLOCK_HASH_COUNT >= 0) state.remove('System', 'BlockHash', [parent.number - BLOCK_HASH_COUNT]);
    const init = this.#ctx(state, number, nowMs, records, 'Initialization');
    subtensor.onInitialize(init);
    storeDuePulses(init);
    revealTimelockedCommitments(init);
    subtensor.revealTimelockedWeights(init);
    for (const [key, value] of this.#pendingRawWrites) overlay.set(key, value);

    // Extrinsic 0: the timestamp inherent.
    const extrinsics: string[] = [];
    const decorated = this.runtime.decorated as unknown as { tx: { timestamp: { set(now: number): unknown } } };
    extrinsics.push(this.registry.createType('Extrinsic', decorated.tx.timestamp.set(nowMs)).toHex());
    state.set('Timestamp', 'Now', [], nowMs);
    records.push(this.codec.eventRecord({ applyExtrinsic: 0 }, this.codec.encodeEvent('System', 'ExtrinsicSuccess', [this.#dispatchInfo('Mandatory')])));

    // Pool transactions: repeat passes so a sender's next nonce becomes applicable after the previous one.
    const included: PoolEntry[] = [];
    const taken = new Set<string>();
    const invalid: string[] = [];
    let progress = true;
    while (progress && included.length < MAX_EXTRINSICS_PER_BLOCK) {
      progress = false;
      for (const entry of this.#pool.values()) {
        if (included.length >= MAX_EXTRINSICS_PER_BLOCK) break;
        if (taken.has(entry.hash)) continue;
        const account = readAccount(state, entry.signer);
        if (number >= entry.deathNumber || entry.nonce < account.nonce) {
          this.#pool.delete(entry.hash);
          invalid.push(entry.hash);
          continue;
        }
        if (entry.nonce > account.nonce) continue;
        const index = extrinsics.length;
        extrinsics.push(entry.hex);
        included.push(entry);
        taken.add(entry.hash);
        progress = true;
        writeAccount(state, entry.signer, { ...account, nonce: account.nonce + 1 });
        const events: Uint8Array[] = [];
        overlay.begin();
        try {
          dispatchCall(this.#ctx(state, number, nowMs, events, { applyExtrinsic: index }), entry.signer, entry.call);
          overlay.commitLayer();
          records.push(...events, this.codec.eventRecord({ applyExtrinsic: index }, this.codec.encodeEvent('System', 'ExtrinsicSuccess', [this.#dispatchInfo('Normal')])));
        } catch (e) {
          overlay.rollbackLayer();
          const error = this.#dispatchError(e, entry.hash);
          records.push(this.codec.eventRecord({ applyExtrinsic: index }, this.codec.encodeEvent('System', 'ExtrinsicFailed', [error, this.#dispatchInfo('Normal')])));
        }
      }
    }

    state.raw.set(state.key('System', 'Events'), this.codec.eventsValue(records));
    state.set('System', 'EventCount', [], records.length);

    const effective = this.#history.commit(number, overlay.changes());
    const header = this.registry.createType('Header', {
      parentHash: parent.hash,
      number,
      stateRoot: stateRoot(parent.stateRoot, effective),
      extrinsicsRoot: extrinsicsRoot(extrinsics),
      digest: { logs: [] },
    });
    const block = this.#recordFromHeader(header.toHex(), extrinsics);
    this.#pushBlock(block);
    this.#history.prune(this.oldestStateBlock());
    for (const entry of included) {
      this.#pool.delete(entry.hash);
      this.#banned.set(entry.hash, this.#now() + TX_BAN_MS);
    }
    if (this.dataFile !== undefined) this.#persist(block, effective);

    this.#notify({ type: 'block', block, changes: effective });
    for (const hash of invalid) this.#notify({ type: 'tx', hash, status: 'invalid' });
    for (const entry of included) this.#notify({ type: 'tx', hash: entry.hash, status: { inBlock: block.hash } });
    this.#promoteFutures();
    const finalized = Math.max(0, number - this.finalityLag);
    while (this.#finalized < finalized) {
      this.#finalized++;
      const fin = this.#blocks[this.#finalized] as BlockRecord;
      this.#notify({ type: 'finalized', block: fin });
      for (const ext of fin.extrinsics.slice(1)) this.#notify({ type: 'tx', hash: blake2Hex(hexToU8a(ext)), status: { finalized: fin.hash } });
    }
    return block;
  }

  /** Future transactions whose nonce gap closed become ready. */
  #promoteFutures(): void {
    for (const entry of this.#pool.values()) {
      if (entry.status === 'future' && entry.nonce <= this.nextIndex(entry.signer)) {
        entry.status = 'ready';
        this.#notify({ type: 'tx', hash: entry.hash, status: 'ready' });
      }
    }
  }

  #recordFromHeader(headerHex: string, extrinsics: readonly string[]): BlockRecord {
    const header = this.registry.createType<Header>('Header', hexToU8a(headerHex));
    return {
      number: header.number.toNumber(),
      hash: header.hash.toHex(),
      parentHash: header.parentHash.toHex(),
      stateRoot: header.stateRoot.toHex(),
      extrinsicsRoot: header.extrinsicsRoot.toHex(),
      headerHex,
      extrinsics,
    };
  }

  #pushBlock(block: BlockRecord): void {
    this.#blocks.push(block);
    this.#byHash.set(block.hash, block.number);
  }

  // ---- genesis and persistence ------------------------------------------------------------------

  #buildGenesis(): { block: BlockRecord; changes: Map<string, string | null> } {
    const overlay = new Overlay({ get: () => null, keys: () => [] });
    writeGenesisState(new TypedState(this.codec, overlay), this.genesis, this.beacon);
    const changes = overlay.changes();
    const header = this.registry.createType('Header', {
      parentHash: ZERO_HASH,
      number: 0,
      stateRoot: stateRoot(ZERO_HASH, new Map([...changes].filter(([, v]) => v !== null))),
      extrinsicsRoot: extrinsicsRoot([]),
      digest: { logs: [] },
    });
    return { block: this.#recordFromHeader(header.toHex(), []), changes };
  }

  #identity(): PersistedChain['identity'] {
    return {
      specVersion: this.runtime.specVersion,
      genesisHash: this.genesisHash,
      genesis: genesisFingerprint(this.genesis),
      beacon: `${this.beacon.kind}:${u8aToHex(this.beacon.publicKey)}`,
    };
  }

  #restore(persisted: PersistedChain, genesisHash: string): void {
    const file = this.dataFile as string;
    let previous: BlockRecord | null = null;
    for (const [i, b] of persisted.blocks.entries()) {
      let block: BlockRecord;
      try {
        block = this.#recordFromHeader(b.headerHex, b.extrinsics);
      } catch (e) {
        throw new DataFileError('corrupt', file, `block ${i} has an undecodable header`, { cause: e });
      }
      if (block.number !== i || (previous !== null && block.parentHash !== previous.hash)) throw new DataFileError('corrupt', file, `block ${i} does not extend block ${i - 1}`);
      if (extrinsicsRoot(b.extrinsics) !== block.extrinsicsRoot) throw new DataFileError('corrupt', file, `block ${i}'s extrinsics do not match its header`);
      this.#pushBlock(block);
      previous = block;
    }
    if (this.genesisHash !== genesisHash) {
      throw new DataFileError(
        'genesis_mismatch',
        file,
        `was written for another genesis (${this.genesisHash}, this configuration builds ${genesisHash}); start with the same options or delete the file`,
      );
    }
    if (persisted.identity.specVersion !== this.runtime.specVersion) {
      throw new DataFileError('genesis_mismatch', file, `was written by a spec ${persisted.identity.specVersion} runtime, this node runs spec ${this.runtime.specVersion}`);
    }
    if (persisted.identity.beacon !== `${this.beacon.kind}:${u8aToHex(this.beacon.publicKey)}`) {
      throw new DataFileError('genesis_mismatch', file, `was written with beacon ${persisted.identity.beacon.slice(0, 40)}…, not the configured one`);
    }
    this.#history.restoreBase(persisted.baseNumber, persisted.baseState);
    for (const [i, changes] of persisted.diffs.entries()) this.#history.commit(persisted.baseNumber + 1 + i, new Map(changes));
    if (this.#history.head !== this.best().number) throw new DataFileError('corrupt', file, 'state diffs do not cover every block');
    const stored = this.#history.get(this.codec.key(this.codec.entry('System', 'Number'), []), this.best().number);
    if (stored === null || codecNumber(this.codec.decodeValue(this.codec.entry('System', 'Number'), stored)) !== this.best().number) {
      throw new DataFileError('corrupt', file, 'state does not match the best block');
    }
    this.#historyFloor = persisted.baseNumber;
    this.#timeOffsetMs = persisted.timeOffsetMs;
    this.#log(`[albedo-devnet] resumed from ${file}: best #${this.best().number} ${this.best().hash}`);
  }

  #persist(block: BlockRecord, changes: ReadonlyMap<string, string | null>): void {
    const file = this.dataFile as string;
    appendBlock(file, block, [...changes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), this.#timeOffsetMs);
    this.#appendedSinceCompact++;
    if (this.#appendedSinceCompact >= COMPACT_EVERY_BLOCKS) this.#compact();
  }

  /** Rewrites the data file from memory (atomically). */
  #compact(): void {
    const file = this.dataFile as string;
    const best = this.best().number;
    const base = this.oldestStateBlock();
    const diffs: Array<Array<[string, string | null]>> = [];
    for (let n = base + 1; n <= best; n++) diffs.push(this.#history.changesOf(n));
    writeDataFile(file, {
      identity: this.#identity(),
      blocks: this.#blocks,
      baseNumber: base,
      baseState: this.#history.entriesAt(base),
      diffs,
      timeOffsetMs: this.#timeOffsetMs,
    });
    this.#appendedSinceCompact = 0;
  }

  /** Stops accepting work and rewrites the data file compactly. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const hash of this.#pool.keys()) this.#notify({ type: 'tx', hash, status: 'dropped' });
    this.#pool.clear();
    if (this.dataFile !== undefined) this.#compact();
    this.#listeners.clear();
  }
}
