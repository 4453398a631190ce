/**
 * The `@polkadot/api` subtensor client (spec/chain.md): connection, the reads the validator and the
 * miner CLI need, and the retry-safe writes (weights here; register and commit in chain/miner-ops.ts).
 * It implements {@link ChainClient}, the only chain API the pipeline services use.
 *
 * Metadata drives everything: no storage or call type is written by hand. The same code runs against
 * finney and against the local dev chain (chain/devnet/), which serves recorded subtensor metadata.
 */
import { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Option, StorageKey, u16, u64, Vec } from '@polkadot/types';
import type { AccountId32 } from '@polkadot/types/interfaces';
import type { ITuple } from '@polkadot/types-codec/types';
import type { Bytes } from '@polkadot/types-codec';
import type { SubmittableExtrinsicFunction } from '@polkadot/api/types';
import { u8aToHex } from '@polkadot/util';
import { encodeAddress } from '@polkadot/util-crypto';
import { LruMap } from '../core/lru.ts';
import { ChainError, type ChainClient, type ChainBlockRef, type RevealedCommitment, type SetWeightsRequest, type SetWeightsResult, chainFaultForDispatchError } from './client.ts';
import { ExtrinsicError, sendAndWait, signOnce } from './extrinsics.ts';
import { call, hasCall, hasStorageItem, storageItem } from './pallets.ts';
import { BackoffWsProvider, ChainConfigError, type ReconnectPolicy, redactEndpoint, resolveEndpoint } from './provider.ts';
import { SUBTENSOR_SIGNED_EXTENSIONS, unknownSignedExtensions } from './signed-extensions.ts';
import type { RawStoragePort } from './storage-mirror.ts';
import { encryptWeightsCommit } from './weights-commit.ts';
import { weightsRateLimitAllows } from './weights.ts';

/** A `RevealedCommitments` value as polkadot.js decodes it (`Option` on some runtimes). */
type RevealedValue = Option<Vec<ITuple<[Bytes, u64]>>> | Vec<ITuple<[Bytes, u64]>>;

/** SS58 of 32 zero bytes: `Owner(hotkey)`'s default, meaning "no owner" (spec §1). */
export const ZERO_ACCOUNT_SS58 = '5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM';
/** @default 30000 — how long `connectSubtensor` waits for the first connection and metadata. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Block-number → hash entries kept (spec §3 step 6: "bounded LRU cache"; CHAIN_BLOCK_HASH_CACHE). @default 10000 */
export const DEFAULT_BLOCK_HASH_CACHE = 10_000;
/** Keys per `state_getKeysPaged` page (nodes cap it at 1000). */
export const KEYS_PAGE = 1000;
/** `mecid` of the main mechanism (spec §6.2). */
export const MAIN_MECHANISM = 0;

export interface SubtensorOptions {
  /** Preset (`finney`, `test`, `archive`, `local`) or a `ws(s)://` URL. */
  readonly network: string;
  /** Extra WS upgrade headers (e.g. the dev chain's bearer token). Never logged. */
  readonly headers?: Record<string, string>;
  readonly reconnect?: ReconnectPolicy;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** Keys that may sign weight sets (the validator hotkey). */
  readonly signers?: readonly KeyringPair[];
  /** @default DEFAULT_BLOCK_HASH_CACHE */
  readonly blockHashCacheSize?: number;
  /** Wall clock in ms, injectable for the timelock reveal-round maths. @default Date.now */
  readonly now?: () => number;
  /** Inclusion wait bounds for writes (see chain/extrinsics.ts). */
  readonly inclusionTimeoutBlocks?: number;
  readonly inclusionTimeoutMs?: number;
}

export interface SubnetWeightParams {
  readonly tempo: number;
  readonly weightsSetRateLimit: number;
  readonly weightsVersionKey: number;
  readonly commitRevealEnabled: boolean;
  readonly revealPeriodEpochs: number;
}

/** One neuron of the metagraph snapshot (spec §3 step 3). */
export interface NeuronKey {
  readonly uid: number;
  readonly hotkey: string;
  readonly registrationBlock: number;
}

export async function connectSubtensor(options: SubtensorOptions): Promise<Subtensor> {
  const endpoint = resolveEndpoint(options.network);
  const provider = new BackoffWsProvider(endpoint, { headers: options.headers, policy: options.reconnect });
  provider.start();
  const api = new ApiPromise({ provider, signedExtensions: SUBTENSOR_SIGNED_EXTENSIONS, noInitWarn: true });
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      api.isReadyOrError,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ChainConfigError(`could not connect to ${redactEndpoint(endpoint)} within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    await api.disconnect().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const unknown = unknownSignedExtensions(api.registry.signedExtensions);
  if (unknown.length > 0) {
    await api.disconnect().catch(() => undefined);
    throw new ChainConfigError(`the runtime at ${redactEndpoint(endpoint)} uses signed extensions this client cannot encode: ${unknown.join(', ')} (spec/chain.md §8)`);
  }
  return new Subtensor(api, provider, endpoint, options);
}

export class Subtensor implements ChainClient {
  private readonly blockHashes: LruMap<number, string>;
  private readonly signers = new Map<string, KeyringPair>();
  /** Printable endpoint (credentials redacted). */
  readonly endpointLabel: string;

  constructor(
    /** The underlying api, for reads this class does not wrap. */
    readonly api: ApiPromise,
    private readonly provider: BackoffWsProvider,
    endpoint: string,
    private readonly options: SubtensorOptions,
  ) {
    this.endpointLabel = redactEndpoint(endpoint);
    this.blockHashes = new LruMap(options.blockHashCacheSize ?? DEFAULT_BLOCK_HASH_CACHE);
    for (const pair of options.signers ?? []) this.signers.set(pair.address, pair);
  }

  // ── blocks ────────────────────────────────────────────────────────────────────────────────────

  async bestBlock(): Promise<ChainBlockRef> {
    const header = await this.api.rpc.chain.getHeader();
    return { number: header.number.toNumber(), hash: header.hash.toHex() };
  }

  async finalizedBlock(): Promise<ChainBlockRef> {
    const hash = await this.api.rpc.chain.getFinalizedHead();
    const header = await this.api.rpc.chain.getHeader(hash);
    return { number: header.number.toNumber(), hash: hash.toHex() };
  }

  /**
   * Lowercase `0x…` hash of block `n` (the sampling seed, spec §3 step 6). Cached only at or below the
   * finalized head, where the answer can no longer change.
   */
  async blockHash(n: number): Promise<string> {
    const cached = this.blockHashes.get(n);
    if (cached) return cached;
    const hash = (await this.api.rpc.chain.getBlockHash(n)).toHex().toLowerCase();
    if (/^0x0{64}$/.test(hash)) throw new ChainError('weight_set_exception', `block ${n} is not known to ${this.endpointLabel}`);
    const finalized = await this.api.rpc.chain.getFinalizedHead();
    const finalizedNumber = (await this.api.rpc.chain.getHeader(finalized)).number.toNumber();
    if (n <= finalizedNumber) this.blockHashes.set(n, hash);
    return hash;
  }

  private async atBlock(atBlock?: number) {
    return atBlock === undefined ? this.api : this.api.at(await this.blockHash(atBlock));
  }

  /** Called after every reconnect (not the first connect): subscriptions may have missed changes. */
  onReconnect(listener: () => void): () => void {
    let first = true;
    return this.provider.on('connected', () => {
      if (first) {
        first = false;
        return;
      }
      listener();
    });
  }

  /**
   * Raw JSON-RPC storage access for incremental readers (chain/storage-mirror.ts). Goes to the provider
   * directly: polkadot.js's decorated `state_queryStorageAt` would decode every value, which is the
   * cost the mirror exists to avoid.
   */
  rawStorage(): RawStoragePort {
    const provider = this.provider;
    return {
      async listKeys(prefix, atHash) {
        const out: string[] = [];
        let start: string | null = null;
        for (;;) {
          const page = (await provider.send('state_getKeysPaged', [prefix, KEYS_PAGE, start, atHash])) as string[];
          out.push(...page);
          if (page.length < KEYS_PAGE) return out;
          start = page[page.length - 1] ?? null;
        }
      },
      async readValues(keys, atHash) {
        const values = new Map<string, string | null>();
        if (keys.length === 0) return values;
        const sets = (await provider.send('state_queryStorageAt', [keys, atHash])) as Array<{ changes: Array<[string, string | null]> }>;
        for (const set of sets) for (const [key, value] of set.changes) values.set(key, value);
        for (const key of keys) if (!values.has(key)) values.set(key, null);
        return values;
      },
      async subscribe(keys, onChange) {
        const id = await provider.subscribe('state_storage', 'state_subscribeStorage', [keys], (error: Error | null, result: unknown) => {
          if (error || !result) return;
          onChange((result as { changes: Array<[string, string | null]> }).changes);
        });
        return () => {
          provider.unsubscribe('state_storage', 'state_unsubscribeStorage', id).catch(() => undefined);
        };
      },
    };
  }

  // ── reads ─────────────────────────────────────────────────────────────────────────────────────

  async revealedCommitments(netuid: number, atBlock?: number): Promise<RevealedCommitment[]> {
    const at = await this.atBlock(atBlock);
    const entries = (await storageItem(at, 'commitments', 'revealedCommitments').entries(netuid)) as unknown as Array<[StorageKey<[u16, AccountId32]>, RevealedValue]>;
    const out: RevealedCommitment[] = [];
    for (const [key, value] of entries) out.push(...(await this.revealedEntries(key.args[1].toString(), value)));
    return out.sort((a, b) => a.block - b.block);
  }

  /**
   * One hotkey's `RevealedCommitments(netuid, hotkey)`, oldest first: a single storage read, for callers
   * that wait on their own reveal (the miner CLI) instead of the whole map.
   */
  async revealedCommitmentsOf(netuid: number, hotkey: string): Promise<RevealedCommitment[]> {
    const value = (await storageItem(this.api, 'commitments', 'revealedCommitments')(netuid, hotkey)) as unknown as RevealedValue;
    return (await this.revealedEntries(hotkey, value)).sort((a, b) => a.block - b.block);
  }

  private async revealedEntries(hotkey: string, value: RevealedValue): Promise<RevealedCommitment[]> {
    const list = 'isSome' in value ? (value.isSome ? value.unwrap() : []) : value;
    const out: RevealedCommitment[] = [];
    for (const [bytes, block] of list) {
      const n = block.toNumber();
      out.push({ hotkey, block: n, blockHash: await this.blockHash(n), bytes: bytes.toU8a(true) });
    }
    return out;
  }

  async uidOf(netuid: number, hotkey: string, atBlock?: number): Promise<number | null> {
    const at = await this.atBlock(atBlock);
    const uid = (await storageItem(at, 'subtensorModule', 'uids')(netuid, hotkey)) as unknown as Option<u16>;
    return uid.isSome ? uid.unwrap().toNumber() : null;
  }

  async hotkeyOf(netuid: number, uid: number, atBlock?: number): Promise<string | null> {
    const at = await this.atBlock(atBlock);
    const key = ((await storageItem(at, 'subtensorModule', 'keys')(netuid, uid)) as unknown as AccountId32).toString();
    return key === ZERO_ACCOUNT_SS58 ? null : key;
  }

  /** `Owner(hotkey)`, or null for the zero account (the hotkey does not exist any more). */
  async ownerOf(hotkey: string, atBlock?: number): Promise<string | null> {
    const at = await this.atBlock(atBlock);
    const owner = ((await storageItem(at, 'subtensorModule', 'owner')(hotkey)) as unknown as AccountId32).toString();
    return owner === ZERO_ACCOUNT_SS58 ? null : owner;
  }

  /** `Keys` and `BlockAtRegistration` of `netuid` at a block (spec §3 step 3). */
  async neurons(netuid: number, atBlock?: number): Promise<NeuronKey[]> {
    const at = await this.atBlock(atBlock);
    const [keys, regs] = await Promise.all([storageItem(at, 'subtensorModule', 'keys').entries(netuid), storageItem(at, 'subtensorModule', 'blockAtRegistration').entries(netuid)]);
    const regByUid = new Map<number, number>();
    for (const [key, value] of regs) regByUid.set((key.args[1] as u16).toNumber(), (value as unknown as u64).toNumber());
    const out: NeuronKey[] = [];
    for (const [key, value] of keys) {
      const uid = (key.args[1] as u16).toNumber();
      const hotkey = (value as unknown as AccountId32).toString();
      if (hotkey !== ZERO_ACCOUNT_SS58) out.push({ uid, hotkey, registrationBlock: regByUid.get(uid) ?? 0 });
    }
    return out.sort((a, b) => a.uid - b.uid);
  }

  /** `Burn(netuid)` in rao. */
  async burnCost(netuid: number): Promise<bigint> {
    return ((await storageItem(this.api, 'subtensorModule', 'burn')(netuid)) as unknown as u64).toBigInt();
  }

  /** `System.Account(ss58).data.free` in rao. */
  async freeBalance(ss58: string): Promise<bigint> {
    const account = (await storageItem(this.api, 'system', 'account')(ss58)) as unknown as { data: { free: { toBigInt(): bigint } } };
    return account.data.free.toBigInt();
  }

  async weightParams(netuid: number): Promise<SubnetWeightParams> {
    const q = (method: string) => storageItem(this.api, 'subtensorModule', method)(netuid);
    const [tempo, rate, version, cr, reveal] = await Promise.all([
      q('tempo'),
      q('weightsSetRateLimit'),
      q('weightsVersionKey'),
      q('commitRevealWeightsEnabled'),
      hasStorageItem(this.api, 'subtensorModule', 'revealPeriodEpochs') ? q('revealPeriodEpochs') : Promise.resolve(null),
    ]);
    const num = (v: unknown) => (v as { toNumber(): number }).toNumber();
    return {
      tempo: num(tempo),
      weightsSetRateLimit: num(rate),
      weightsVersionKey: num(version),
      commitRevealEnabled: (cr as unknown as { isTrue: boolean }).isTrue,
      revealPeriodEpochs: reveal === null ? 1 : num(reveal),
    };
  }

  /**
   * `LastUpdate(mecid·4096 + netuid)[uid]` of the hotkey, or null when 0 / not registered. Runtimes also
   * write it at registration (seen on spec 218), so right after registering it is the registration block.
   */
  async lastWeightsSetBlock(netuid: number, hotkey: string): Promise<number | null> {
    const uid = await this.uidOf(netuid, hotkey);
    if (uid === null) return null;
    const updates = (await storageItem(this.api, 'subtensorModule', 'lastUpdate')(MAIN_MECHANISM * 4096 + netuid)) as unknown as Vec<u64>;
    const last = updates[uid]?.toNumber() ?? 0;
    return last === 0 ? null : last;
  }

  // ── weights (spec §6.2) ─────────────────────────────────────────────────────────────────────

  /** Adds a key that may sign weight sets. */
  addSigner(pair: KeyringPair): void {
    this.signers.set(pair.address, pair);
  }

  async setWeights(request: SetWeightsRequest): Promise<SetWeightsResult> {
    const signer = this.signers.get(request.signer);
    if (!signer) throw new ChainError('weight_set_exception', `no signing key loaded for hotkey ${request.signer}`);
    let extrinsicHash: string | null = null;
    try {
      const uid = await this.uidOf(request.netuid, request.signer);
      if (uid === null) throw new ChainError('weight_set_rejected', `validator hotkey ${request.signer} is not registered on netuid ${request.netuid}`);
      const [best, params, last] = await Promise.all([this.bestBlock(), this.weightParams(request.netuid), this.lastWeightsSetBlock(request.netuid, request.signer)]);
      if (!weightsRateLimitAllows(best.number, last, params.weightsSetRateLimit)) {
        throw new ChainError('weight_set_rate_limited', `rate limited: last weight set at block ${last}, limit ${params.weightsSetRateLimit} blocks, now ${best.number}`);
      }
      const versionKey = Math.max(request.versionKey, params.weightsVersionKey);
      let tx: ReturnType<SubmittableExtrinsicFunction<'promise'>>;
      if (params.commitRevealEnabled) {
        if (!hasCall(this.api, 'subtensorModule', 'commitTimelockedMechanismWeights')) throw new ChainError('weight_set_rejected', 'commit-reveal is enabled but this runtime has no commitTimelockedMechanismWeights');
        const { ciphertext, revealRound } = await encryptWeightsCommit(this, {
          netuid: request.netuid,
          hotkeyPublicKey: signer.publicKey,
          uids: request.uids,
          weights: request.weights,
          versionKey,
          currentBlock: best.number,
          params,
          nowMs: (this.options.now ?? Date.now)(),
        });
        tx = call(this.api, 'subtensorModule', 'commitTimelockedMechanismWeights')(request.netuid, MAIN_MECHANISM, u8aToHex(ciphertext), revealRound, 4);
      } else if (hasCall(this.api, 'subtensorModule', 'setMechanismWeights')) {
        tx = call(this.api, 'subtensorModule', 'setMechanismWeights')(request.netuid, MAIN_MECHANISM, [...request.uids], [...request.weights], versionKey);
      } else {
        tx = call(this.api, 'subtensorModule', 'setWeights')(request.netuid, [...request.uids], [...request.weights], versionKey);
      }
      const signed = await signOnce(tx, signer);
      extrinsicHash = signed.hash.toHex();
      const included = await sendAndWait(this.api, signed, {
        waitFor: 'inBlock',
        timeoutBlocks: this.options.inclusionTimeoutBlocks,
        timeoutMs: this.options.inclusionTimeoutMs,
      });
      return { extrinsicHash: included.extrinsicHash, includedInBlock: included.blockNumber };
    } catch (error) {
      throw toWeightChainError(error, extrinsicHash);
    }
  }

  /** The injected wall clock (ms), for reveal-round maths. */
  nowMs(): number {
    return (this.options.now ?? Date.now)();
  }

  async close(): Promise<void> {
    await this.api.disconnect().catch(() => undefined);
  }
}

/** Maps any failure of a weight set to the CHAIN fault codes of spec §6.2 step 6. */
export function toWeightChainError(error: unknown, extrinsicHash: string | null): ChainError {
  if (error instanceof ChainError) return error;
  if (error instanceof ExtrinsicError) {
    switch (error.code) {
      case 'dispatch_failed':
        return new ChainError(chainFaultForDispatchError(error.moduleError?.name ?? ''), error.message, error.extrinsicHash, { cause: error });
      case 'invalid':
      case 'dropped':
        return new ChainError('weight_set_rejected', error.message, error.extrinsicHash, { cause: error });
      case 'not_included':
        return new ChainError('weight_set_not_included', error.message, error.extrinsicHash, { cause: error });
      case 'timeout':
        return new ChainError('weight_set_timeout', error.message, error.extrinsicHash, { cause: error });
      case 'rpc_failed':
        return new ChainError('weight_set_exception', error.message, error.extrinsicHash, { cause: error });
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ChainError('weight_set_exception', message, extrinsicHash, { cause: error });
}

/** SS58 (prefix 42) of a 32-byte public key. */
export function ss58(publicKey: Uint8Array): string {
  return encodeAddress(publicKey, 42);
}
