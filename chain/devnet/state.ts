/**
 * In-memory state of the LOCAL STAND-IN chain (not subtensor): blocks, registrations, commitments,
 * reveals, weights, the extrinsic pool. Synchronous and deterministic; the server adds transport,
 * timers and persistence.
 *
 * Block hashes form a sha256 chain: `hash(n) = sha256(hash(n−1) ‖ u64_be(n) ‖ extrinsic hashes)`,
 * genesis `sha256("albedo-devnet local stand-in genesis")`. Empty blocks therefore hash the same on
 * every run, which keeps tests and restarts reproducible.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { scaleEncodeString } from '../reveal.ts';
import { weightsRateLimitAllows } from '../weights.ts';
import {
  type DevBlockHeader,
  type DevBlockRef,
  type DevExtrinsicStatus,
  type DevRevealEntry,
  type DevWeightsEntry,
  MAX_COMMIT_BYTES,
  REVEALS_PER_HOTKEY,
  STANDIN_LABEL,
  blockHeaderSchema,
  bytesToHex,
  hash32Schema,
  hexToBytes,
  hotkeySchema,
} from './protocol.ts';

/** A refusal by the stand-in runtime; `error` mimics a subtensor module error name. */
export class DevRuntimeError extends Error {
  override readonly name = 'DevRuntimeError';
  constructor(
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

export class UnknownBlockError extends Error {
  override readonly name = 'UnknownBlockError';
}

export interface DevChainConfig {
  weightsSetRateLimit: number;
  weightsVersionKey: number;
  maxUidsPerSubnet: number;
  /** Headers kept for `blockHash(n)` lookups; reveals keep their own block hash forever. */
  retainBlocks: number;
  /** Included-extrinsic statuses kept for `extrinsicStatus`. */
  retainExtrinsics: number;
  /** Reveal history kept per (netuid, hotkey) for `atBlock` queries (≥ {@link REVEALS_PER_HOTKEY}). */
  retainRevealsPerHotkey: number;
}

export const DEFAULT_CONFIG: DevChainConfig = {
  weightsSetRateLimit: 100,
  weightsVersionKey: 0,
  maxUidsPerSubnet: 4096,
  retainBlocks: 4096,
  retainExtrinsics: 10_000,
  retainRevealsPerHotkey: 64,
};

/** Stand-in limits so delayed reveals cannot grow state without bound. */
export const MAX_REVEAL_DELAY_BLOCKS = 100_000;
export const MAX_PENDING_REVEALS = 10_000;

const GENESIS_HASH = `0x${createHash('sha256').update('albedo-devnet local stand-in genesis').digest('hex')}`;

type PendingExtrinsic =
  | { readonly hash: string; readonly kind: 'commit'; readonly netuid: number; readonly hotkey: string; readonly dataHex: string; readonly revealAtBlock: number | null }
  | {
      readonly hash: string;
      readonly kind: 'setWeights';
      readonly netuid: number;
      readonly hotkey: string;
      readonly uids: readonly number[];
      readonly weights: readonly number[];
      readonly versionKey: number;
    };

// ---- persisted shape -----------------------------------------------------------------------------

const U32 = z.number().int().min(0).max(4_294_967_295);
const neuronSchema = z.strictObject({ uid: z.number().int().min(0).max(65535), hotkey: hotkeySchema, registrationBlock: U32 });
const storedRevealSchema = z.strictObject({ block: U32, blockHash: hash32Schema, dataHex: z.string().regex(/^0x(?:[0-9a-f]{2})*$/) });
const pendingRevealSchema = z.strictObject({ hotkey: hotkeySchema, dataHex: z.string().regex(/^0x(?:[0-9a-f]{2})*$/), revealAt: U32, commitBlock: U32 });
const storedWeightsSchema = z.strictObject({
  uid: z.number().int().min(0).max(65535),
  uids: z.array(z.number().int().min(0).max(65535)),
  weights: z.array(z.number().int().min(0).max(65535)),
  versionKey: z.number().int().min(0),
  block: U32,
});
const subnetSchema = z.strictObject({
  neurons: z.array(neuronSchema),
  // arrays keyed by hotkey, not records: a hotkey may legally be named `__proto__`
  reveals: z.array(z.strictObject({ hotkey: hotkeySchema, entries: z.array(storedRevealSchema) })),
  pendingReveals: z.array(pendingRevealSchema),
  weights: z.array(z.strictObject({ hotkey: hotkeySchema, set: storedWeightsSchema })),
});
const includedStatusSchema = z.strictObject({ block: U32, blockHash: hash32Schema, success: z.boolean(), error: z.string().nullable() });

export const PERSISTED_FORMAT = 'albedo-devnet-local-standin/1';
export const persistedStateSchema = z.strictObject({
  format: z.literal(PERSISTED_FORMAT),
  warning: z.string(),
  nonce: z.number().int().min(0),
  best: z.strictObject({ number: U32, hash: hash32Schema }),
  headers: z.array(blockHeaderSchema),
  subnets: z.record(z.string().regex(/^\d{1,5}$/), subnetSchema),
  extrinsics: z.record(hash32Schema, includedStatusSchema),
});
export type PersistedState = z.infer<typeof persistedStateSchema>;

type StoredReveal = z.infer<typeof storedRevealSchema>;
type StoredWeights = z.infer<typeof storedWeightsSchema>;
/** Maps, not records: hotkeys such as `__proto__` or `constructor` must be plain keys. */
interface Subnet {
  neurons: Array<z.infer<typeof neuronSchema>>;
  reveals: Map<string, StoredReveal[]>;
  pendingReveals: Array<z.infer<typeof pendingRevealSchema>>;
  weights: Map<string, StoredWeights>;
}
type IncludedStatus = z.infer<typeof includedStatusSchema>;

function sha256Hex0x(parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return `0x${h.digest('hex')}`;
}

function u64be(n: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export class DevChainState {
  private readonly config: DevChainConfig;
  private nonce = 0;
  private best: DevBlockRef = { number: 0, hash: GENESIS_HASH };
  /** Retained headers, ascending; `headers[0]` may be later than genesis after pruning. */
  private headers: DevBlockHeader[] = [{ number: 0, hash: GENESIS_HASH, parentHash: `0x${'0'.repeat(64)}`, extrinsics: [] }];
  private readonly subnets = new Map<number, Subnet>();
  private readonly included = new Map<string, IncludedStatus>();
  private pool: PendingExtrinsic[] = [];

  constructor(config: Partial<DevChainConfig> = {}, persisted?: PersistedState) {
    this.config = { ...DEFAULT_CONFIG, ...config };
    if (this.config.retainRevealsPerHotkey < REVEALS_PER_HOTKEY) this.config.retainRevealsPerHotkey = REVEALS_PER_HOTKEY;
    if (persisted !== undefined) this.load(persisted);
  }

  static genesisHash(): string {
    return GENESIS_HASH;
  }

  get settings(): Readonly<DevChainConfig> {
    return this.config;
  }

  // ---- reads ---------------------------------------------------------------------------------------

  bestBlock(): DevBlockRef {
    return { ...this.best };
  }

  blockHash(n: number): string | null {
    const first = this.headers[0];
    if (first === undefined || n < first.number || n > this.best.number) return null;
    return this.headers[n - first.number]?.hash ?? null;
  }

  /** Extrinsics waiting for the next block. */
  poolSize(): number {
    return this.pool.length;
  }

  netuids(): number[] {
    return [...this.subnets.keys()].sort((a, b) => a - b);
  }

  uidOf(netuid: number, hotkey: string): number | null {
    const s = this.subnets.get(netuid);
    return s?.neurons.find((n) => n.hotkey === hotkey)?.uid ?? null;
  }

  hotkeyOf(netuid: number, uid: number): string | null {
    return this.subnets.get(netuid)?.neurons[uid]?.hotkey ?? null;
  }

  revealedCommitments(netuid: number, atBlock?: number): DevRevealEntry[] {
    const at = atBlock ?? this.best.number;
    if (at > this.best.number) throw new UnknownBlockError(`block ${at} is beyond the best block ${this.best.number}`);
    const s = this.subnets.get(netuid);
    if (s === undefined) return [];
    const out: DevRevealEntry[] = [];
    for (const [hotkey, entries] of s.reveals) {
      const visible = entries.filter((e) => e.block <= at).slice(-REVEALS_PER_HOTKEY);
      for (const e of visible) out.push({ hotkey, block: e.block, blockHash: e.blockHash, dataHex: e.dataHex });
    }
    out.sort((a, b) => a.block - b.block || (a.hotkey < b.hotkey ? -1 : a.hotkey > b.hotkey ? 1 : 0));
    return out;
  }

  weights(netuid: number): DevWeightsEntry[] {
    const s = this.subnets.get(netuid);
    if (s === undefined) return [];
    return [...s.weights]
      .map(([hotkey, w]) => ({ hotkey, uid: w.uid, uids: [...w.uids], weights: [...w.weights], versionKey: w.versionKey, block: w.block }))
      .sort((a, b) => a.uid - b.uid);
  }

  lastWeightsSetBlock(netuid: number, hotkey: string): number | null {
    return this.subnets.get(netuid)?.weights.get(hotkey)?.block ?? null;
  }

  extrinsicStatus(hash: string): DevExtrinsicStatus {
    const inc = this.included.get(hash);
    if (inc !== undefined) return { status: 'included', ...inc };
    if (this.pool.some((x) => x.hash === hash)) return { status: 'pending', queuedForBlock: this.best.number + 1 };
    return { status: 'unknown' };
  }

  // ---- writes --------------------------------------------------------------------------------------

  /**
   * Registers `hotkey` immediately (no extrinsic; a stand-in shortcut) at the best block. With
   * `replaceUid` the uid's current holder is deregistered first (simulates deregistration).
   */
  register(netuid: number, hotkey: string, replaceUid?: number): { uid: number; registrationBlock: number; alreadyRegistered: boolean } {
    const s = this.subnet(netuid);
    const existing = s.neurons.find((n) => n.hotkey === hotkey);
    if (existing !== undefined) {
      if (replaceUid !== undefined && replaceUid !== existing.uid) {
        throw new DevRuntimeError('HotKeyAlreadyRegisteredInSubNet', `hotkey already holds uid ${existing.uid} on netuid ${netuid}`);
      }
      return { uid: existing.uid, registrationBlock: existing.registrationBlock, alreadyRegistered: true };
    }
    const registrationBlock = this.best.number;
    if (replaceUid !== undefined) {
      const old = s.neurons[replaceUid];
      if (old === undefined) throw new DevRuntimeError('UidNotFound', `uid ${replaceUid} does not exist on netuid ${netuid}`);
      s.weights.delete(old.hotkey);
      s.neurons[replaceUid] = { uid: replaceUid, hotkey, registrationBlock };
      return { uid: replaceUid, registrationBlock, alreadyRegistered: false };
    }
    if (s.neurons.length >= this.config.maxUidsPerSubnet) {
      throw new DevRuntimeError('TooManyRegistrations', `netuid ${netuid} is full (${this.config.maxUidsPerSubnet} uids)`);
    }
    const uid = s.neurons.length;
    s.neurons.push({ uid, hotkey, registrationBlock });
    return { uid, registrationBlock, alreadyRegistered: false };
  }

  /** Queues a commitment for the next block. `reveal` is stored as a SCALE string (chain.md §2.1). */
  submitCommit(p: { netuid: number; hotkey: string; reveal?: string; dataHex?: string; revealAtBlock?: number }): { extrinsicHash: string; queuedForBlock: number } {
    if (this.uidOf(p.netuid, p.hotkey) === null) {
      throw new DevRuntimeError('AccountNotAllowedCommit', `hotkey is not registered on netuid ${p.netuid}`);
    }
    if (p.revealAtBlock !== undefined && p.revealAtBlock > this.best.number + MAX_REVEAL_DELAY_BLOCKS) {
      throw new DevRuntimeError('RevealTooFarAhead', `revealAtBlock may be at most ${MAX_REVEAL_DELAY_BLOCKS} blocks ahead`);
    }
    const waiting = (this.subnets.get(p.netuid)?.pendingReveals.length ?? 0) + this.pool.length;
    if (p.revealAtBlock !== undefined && waiting >= MAX_PENDING_REVEALS) {
      throw new DevRuntimeError('SpaceLimitExceeded', `at most ${MAX_PENDING_REVEALS} commitments may wait for their reveal`);
    }
    const dataHex = p.reveal !== undefined ? bytesToHex(scaleEncodeString(p.reveal)) : (p.dataHex ?? '0x');
    if ((dataHex.length - 2) / 2 > MAX_COMMIT_BYTES) throw new DevRuntimeError('SpaceLimitExceeded', `commitment exceeds ${MAX_COMMIT_BYTES} bytes`);
    const hash = this.extrinsicHash({ kind: 'commit', netuid: p.netuid, hotkey: p.hotkey, dataHex, revealAtBlock: p.revealAtBlock ?? null });
    this.pool.push({ hash, kind: 'commit', netuid: p.netuid, hotkey: p.hotkey, dataHex, revealAtBlock: p.revealAtBlock ?? null });
    return { extrinsicHash: hash, queuedForBlock: this.best.number + 1 };
  }

  /**
   * Queues a weight set for the next block after pool validation. Refusals mimic subtensor's error
   * names; the rate limit also counts a weight set of the same hotkey already waiting in the pool.
   */
  submitWeights(p: { netuid: number; hotkey: string; uids: readonly number[]; weights: readonly number[]; versionKey: number }): {
    extrinsicHash: string;
    queuedForBlock: number;
  } {
    const next = this.best.number + 1;
    this.checkWeights(p, next);
    if (this.pool.some((x) => x.kind === 'setWeights' && x.netuid === p.netuid && x.hotkey === p.hotkey)) {
      throw new DevRuntimeError('SettingWeightsTooFast', 'a weight set of this hotkey is already pending');
    }
    const hash = this.extrinsicHash({ kind: 'setWeights', netuid: p.netuid, hotkey: p.hotkey, uids: [...p.uids], weights: [...p.weights], versionKey: p.versionKey });
    this.pool.push({ hash, kind: 'setWeights', netuid: p.netuid, hotkey: p.hotkey, uids: [...p.uids], weights: [...p.weights], versionKey: p.versionKey });
    return { extrinsicHash: hash, queuedForBlock: next };
  }

  /** Builds the next block from the whole pool, applies it, and returns its header. */
  produceBlock(): { header: DevBlockHeader; changedState: boolean } {
    const number = this.best.number + 1;
    const batch = this.pool;
    this.pool = [];
    const parentHash = this.best.hash;
    const hash = sha256Hex0x([hexToBytes(parentHash), u64be(number), ...batch.map((x) => hexToBytes(x.hash))]);
    let changedState = batch.length > 0;
    for (const x of batch) {
      let error: string | null = null;
      try {
        if (x.kind === 'commit') this.applyCommit(x, number, hash);
        else this.applyWeights(x, number);
      } catch (e) {
        if (!(e instanceof DevRuntimeError)) throw e;
        error = e.error;
      }
      this.included.set(x.hash, { block: number, blockHash: hash, success: error === null, error });
    }
    for (const s of this.subnets.values()) {
      const due = s.pendingReveals.filter((r) => r.revealAt <= number);
      if (due.length === 0) continue;
      changedState = true;
      s.pendingReveals = s.pendingReveals.filter((r) => r.revealAt > number);
      for (const r of due) this.appendReveal(s, r.hotkey, { block: number, blockHash: hash, dataHex: r.dataHex });
    }
    const header: DevBlockHeader = { number, hash, parentHash, extrinsics: batch.map((x) => x.hash) };
    this.headers.push(header);
    if (this.headers.length > this.config.retainBlocks) this.headers.splice(0, this.headers.length - this.config.retainBlocks);
    while (this.included.size > this.config.retainExtrinsics) {
      const oldest = this.included.keys().next();
      if (oldest.done === true) break;
      this.included.delete(oldest.value);
    }
    this.best = { number, hash };
    return { header, changedState };
  }

  // ---- persistence ---------------------------------------------------------------------------------

  toJSON(): PersistedState {
    const subnets: PersistedState['subnets'] = {};
    for (const [netuid, s] of this.subnets) {
      subnets[String(netuid)] = {
        neurons: s.neurons.map((n) => ({ ...n })),
        reveals: [...s.reveals].map(([hotkey, v]) => ({ hotkey, entries: v.map((e) => ({ ...e })) })),
        pendingReveals: s.pendingReveals.map((r) => ({ ...r })),
        weights: [...s.weights].map(([hotkey, w]) => ({ hotkey, set: { ...w, uids: [...w.uids], weights: [...w.weights] } })),
      };
    }
    return {
      format: PERSISTED_FORMAT,
      warning: STANDIN_LABEL,
      nonce: this.nonce,
      best: this.best,
      headers: this.headers,
      subnets,
      extrinsics: Object.fromEntries(this.included),
    };
  }

  private load(p: PersistedState): void {
    const last = p.headers[p.headers.length - 1];
    if (last === undefined || last.number !== p.best.number || last.hash !== p.best.hash) {
      throw new Error('persisted stand-in chain state is inconsistent: best block is not the last header');
    }
    this.nonce = p.nonce;
    this.best = { ...p.best };
    this.headers = p.headers.map((h) => ({ ...h, extrinsics: [...h.extrinsics] }));
    for (const [k, s] of Object.entries(p.subnets)) {
      const c = structuredClone(s);
      if (Number(k) > 65535) throw new Error(`persisted stand-in chain state: netuid ${k} is not a u16`);
      c.neurons.forEach((n, i) => {
        if (n.uid !== i) throw new Error(`persisted stand-in chain state: netuid ${k} neuron ${i} has uid ${n.uid}`);
      });
      this.subnets.set(Number(k), {
        neurons: c.neurons,
        reveals: new Map(c.reveals.map((r) => [r.hotkey, r.entries])),
        pendingReveals: c.pendingReveals,
        weights: new Map(c.weights.map((w) => [w.hotkey, w.set])),
      });
    }
    for (const [k, v] of Object.entries(p.extrinsics)) this.included.set(k, { ...v });
  }

  // ---- internals -----------------------------------------------------------------------------------

  private subnet(netuid: number): Subnet {
    let s = this.subnets.get(netuid);
    if (s === undefined) {
      s = { neurons: [], reveals: new Map(), pendingReveals: [], weights: new Map() };
      this.subnets.set(netuid, s);
    }
    return s;
  }

  private extrinsicHash(call: Record<string, unknown>): string {
    const nonce = this.nonce++;
    return sha256Hex0x([Buffer.from(JSON.stringify({ ...call, nonce }), 'utf8')]);
  }

  private checkWeights(p: { netuid: number; hotkey: string; uids: readonly number[]; weights: readonly number[]; versionKey: number }, atBlock: number): number {
    const uid = this.uidOf(p.netuid, p.hotkey);
    if (uid === null) throw new DevRuntimeError('HotKeyNotRegisteredInSubNet', `hotkey is not registered on netuid ${p.netuid}`);
    if (p.uids.length !== p.weights.length) throw new DevRuntimeError('WeightVecNotEqualSize', 'uids and weights differ in length');
    if (p.uids.length === 0) throw new DevRuntimeError('WeightVecLengthIsLow', 'empty weight vector');
    if (new Set(p.uids).size !== p.uids.length) throw new DevRuntimeError('DuplicateUids', 'duplicate uids');
    const n = this.subnets.get(p.netuid)?.neurons.length ?? 0;
    if (p.uids.some((u) => u >= n)) throw new DevRuntimeError('UidVecContainInvalidOne', 'a uid does not exist on the subnet');
    const chainKey = this.config.weightsVersionKey;
    if (chainKey > 0 && p.versionKey < chainKey) throw new DevRuntimeError('IncorrectWeightVersionKey', `version key ${p.versionKey} < ${chainKey}`);
    const last = this.lastWeightsSetBlock(p.netuid, p.hotkey);
    if (!weightsRateLimitAllows(atBlock, last, this.config.weightsSetRateLimit)) {
      throw new DevRuntimeError('SettingWeightsTooFast', `last set at block ${last}; rate limit ${this.config.weightsSetRateLimit} blocks`);
    }
    return uid;
  }

  private applyWeights(x: Extract<PendingExtrinsic, { kind: 'setWeights' }>, block: number): void {
    const uid = this.checkWeights(x, block);
    this.subnet(x.netuid).weights.set(x.hotkey, { uid, uids: [...x.uids], weights: [...x.weights], versionKey: x.versionKey, block });
  }

  private applyCommit(x: Extract<PendingExtrinsic, { kind: 'commit' }>, block: number, blockHash: string): void {
    if (this.uidOf(x.netuid, x.hotkey) === null) throw new DevRuntimeError('AccountNotAllowedCommit', 'hotkey is not registered');
    const s = this.subnet(x.netuid);
    const revealAt = Math.max(x.revealAtBlock ?? block, block);
    if (revealAt === block) this.appendReveal(s, x.hotkey, { block, blockHash, dataHex: x.dataHex });
    else s.pendingReveals.push({ hotkey: x.hotkey, dataHex: x.dataHex, revealAt, commitBlock: block });
  }

  private appendReveal(s: Subnet, hotkey: string, entry: { block: number; blockHash: string; dataHex: string }): void {
    const list = s.reveals.get(hotkey) ?? [];
    list.push(entry);
    if (list.length > this.config.retainRevealsPerHotkey) list.splice(0, list.length - this.config.retainRevealsPerHotkey);
    s.reveals.set(hotkey, list);
  }
}
