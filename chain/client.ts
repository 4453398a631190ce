/**
 * The chain boundary the backend depends on, implemented by `Subtensor` (chain/subtensor.ts, the
 * `@polkadot/api` client of spec/chain.md) against finney or the local dev chain alike. Services must
 * only use this interface, never an implementation directly.
 */
import { type FaultCode, type StageFault, stageFault } from '../core/faults.ts';

export interface ChainBlockRef {
  readonly number: number;
  /** `0x`-prefixed lowercase hex, 32 bytes. */
  readonly hash: string;
}

/** One `RevealedCommitments` entry: the raw revealed bytes and the block that recorded them. */
export interface RevealedCommitment {
  readonly hotkey: string;
  /** `reveal_block`: the block in which the chain recorded the reveal. */
  readonly block: number;
  /** Hash of `block` (lowercase `0x…`): the submission's sampling seed (chain.md §3 step 6). */
  readonly blockHash: string;
  /** Revealed bytes as stored by the chain: a SCALE string (chain.md §2.1); parse with `parseReveal`. */
  readonly bytes: Uint8Array;
}

export interface SetWeightsRequest {
  readonly netuid: number;
  /** `Vec<u16>` destinations, already ordered by the caller (burn uid first, then ascending). */
  readonly uids: readonly number[];
  /** u16 weights parallel to `uids` — the output of `normalizeWeightsU16`. */
  readonly weights: readonly number[];
  readonly versionKey: number;
  /** SS58 of the validator hotkey that signs the extrinsic. */
  readonly signer: string;
}

export interface SetWeightsResult {
  readonly extrinsicHash: string;
  /** Number of the block that included the (successful) extrinsic. */
  readonly includedInBlock: number;
}

export interface ChainClient {
  /** Best (not finalized) block. */
  bestBlock(): Promise<ChainBlockRef>;
  /**
   * All revealed commitments of `netuid` as stored at `atBlock` (default: best). Per hotkey the chain
   * keeps at most 10 entries, oldest dropped.
   */
  revealedCommitments(netuid: number, atBlock?: number): Promise<RevealedCommitment[]>;
  /** `Uids(netuid, hotkey)`: the hotkey's uid, or null when not registered. */
  uidOf(netuid: number, hotkey: string): Promise<number | null>;
  /** `Keys(netuid, uid)`: the hotkey holding `uid`, or null when empty (coronation.md §3 step 2). */
  hotkeyOf(netuid: number, uid: number): Promise<string | null>;
  /**
   * Submits a weight vector signed by `signer` and waits for **inclusion** (chain.md §6.2 step 6).
   * Throws {@link ChainError}: `weight_set_rejected` (not registered, dispatch error),
   * `weight_set_rate_limited` (`SettingWeightsTooFast`), `weight_set_not_included` (dropped or not
   * included within the block budget), `weight_set_timeout` (wall-clock wait for inclusion expired —
   * the extrinsic may still land: check {@link lastWeightsSetBlock} before retrying, see
   * {@link setWeightsOnce}), `weight_set_exception` (transport or unexpected errors).
   */
  setWeights(request: SetWeightsRequest): Promise<SetWeightsResult>;
  /** Block of the hotkey's last successful weight set on `netuid` (`LastUpdate`), or null if never. */
  lastWeightsSetBlock(netuid: number, hotkey: string): Promise<number | null>;
  close(): Promise<void>;
}

/** The CHAIN fault codes a {@link ChainClient} may raise. */
export const CHAIN_FAULT_CODES = [
  'weight_set_timeout',
  'weight_set_rejected',
  'weight_set_rate_limited',
  'weight_set_not_included',
  'weight_set_exception',
] as const satisfies readonly FaultCode[];
export type ChainFaultCode = (typeof CHAIN_FAULT_CODES)[number];

/** Typed failure of a chain write; `code` is a closed CHAIN_FAULT code from core/faults.ts. */
export class ChainError extends Error {
  override readonly name = 'ChainError';
  readonly faultClass = 'CHAIN_FAULT' as const;
  constructor(
    readonly code: ChainFaultCode,
    message: string,
    /** Extrinsic hash if one was submitted (e.g. a timeout: the extrinsic may still be included). */
    readonly extrinsicHash: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toStageFault(): StageFault {
    return stageFault('CHAIN_FAULT', this.code, this.message);
  }
}

export function isChainError(value: unknown): value is ChainError {
  return value instanceof ChainError;
}

/**
 * Maps a substrate dispatch / pool error name to a CHAIN fault code (chain.md §6.2 step 6):
 * `SettingWeightsTooFast` (and the pool-level rate limit) ⇒ rate limited; everything else ⇒ rejected.
 */
export function chainFaultForDispatchError(errorName: string): ChainFaultCode {
  return errorName === 'SettingWeightsTooFast' || errorName === 'CommittingWeightsTooFast' ? 'weight_set_rate_limited' : 'weight_set_rejected';
}

export type SetWeightsOnceResult =
  | (SetWeightsResult & { readonly alreadyIncluded: false })
  | { readonly alreadyIncluded: true; readonly extrinsicHash: null; readonly includedInBlock: number };

/**
 * Retry-safe weight set: if the chain already shows a weight set by `signer` at or after `sinceBlock`
 * (the claim block of the first attempt), nothing is submitted and that block is returned. Use it for
 * every retry after `weight_set_timeout`, so a timed-out extrinsic that landed is never doubled.
 */
export async function setWeightsOnce(
  client: ChainClient,
  request: SetWeightsRequest,
  options: { sinceBlock: number },
): Promise<SetWeightsOnceResult> {
  const last = await client.lastWeightsSetBlock(request.netuid, request.signer);
  if (last !== null && last >= options.sinceBlock) return { alreadyIncluded: true, extrinsicHash: null, includedInBlock: last };
  const result = await client.setWeights(request);
  return { ...result, alreadyIncluded: false };
}
