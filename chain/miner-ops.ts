/**
 * Miner-side chain writes: `burned_register` (spec/chain.md §5) and the timelocked `v7` commitment (§4),
 * shared by the `albedo` CLI and the integration tests. Each is retry-safe: before re-sending after a
 * timeout it checks chain state (uid present, our exact ciphertext stored), so nothing is doubled.
 */
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Bytes, Option } from '@polkadot/types';
import { u8aEq, u8aToHex } from '@polkadot/util';
import { readBeacon } from './beacon-config.ts';
import { ExtrinsicError, type IncludedExtrinsic, sendAndWait, signOnce, type WaitOptions } from './extrinsics.ts';
import { formatReveal, parseReveal, scaleEncodeString } from './reveal.ts';
import { call, storageItem } from './pallets.ts';
import type { Subtensor } from './subtensor.ts';
import { CHAIN_COMMITMENT_CIPHERTEXT_LIMIT, commitRevealRound, timelockEncrypt } from './timelock.ts';

/** 1 TAO = 10^9 rao. */
export const RAO_PER_TAO = 1_000_000_000n;
/** Raw commitment fields hold at most 128 bytes (`Raw0..Raw128`, spec §1). */
export const MAX_RAW_COMMITMENT_BYTES = 128;
/** How long `albedo commit` waits for the reveal by default (miner-cli.md: "up to 2 min"). */
export const DEFAULT_REVEAL_WAIT_MS = 120_000;

export type MinerOpErrorCode =
  | 'not_registered'
  | 'insufficient_balance'
  | 'aborted'
  | 'invalid_reveal'
  | 'payload_too_large'
  | 'dispatch_failed'
  | 'not_included'
  | 'timeout'
  | 'rpc_failed';

export class MinerOpError extends Error {
  override readonly name = 'MinerOpError';
  constructor(
    readonly code: MinerOpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `12.5 TAO` style formatting of rao, exact (no float rounding). */
export function formatTao(rao: bigint): string {
  const whole = rao / RAO_PER_TAO;
  const frac = (rao % RAO_PER_TAO).toString().padStart(9, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} TAO`;
}

function fromExtrinsicError(error: unknown): MinerOpError {
  if (error instanceof MinerOpError) return error;
  if (error instanceof ExtrinsicError) {
    const code: MinerOpErrorCode =
      error.code === 'dispatch_failed' || error.code === 'invalid' || error.code === 'dropped' ? 'dispatch_failed' : error.code === 'not_included' ? 'not_included' : error.code === 'timeout' ? 'timeout' : 'rpc_failed';
    return new MinerOpError(code, error.message, { cause: error });
  }
  return new MinerOpError('rpc_failed', error instanceof Error ? error.message : String(error), { cause: error });
}

// ── registration (§5) ──────────────────────────────────────────────────────────────────────────

export interface RegisterRequest {
  readonly netuid: number;
  /** Signs and pays. */
  readonly coldkey: KeyringPair;
  /** SS58 of the hotkey to register. */
  readonly hotkey: string;
  /** Shown the cost and balance first; resolve false to abort (spec §5 step 3). Omit to skip. */
  readonly confirm?: (quote: { costRao: bigint; balanceRao: bigint }) => Promise<boolean>;
  readonly onStatus?: (status: string) => void;
  /** Inclusion wait bounds (chain/extrinsics.ts defaults). */
  readonly wait?: Pick<WaitOptions, 'timeoutBlocks' | 'timeoutMs'>;
}

export interface RegisterResult {
  readonly uid: number;
  readonly alreadyRegistered: boolean;
  readonly costRao: bigint | null;
  readonly included: IncludedExtrinsic | null;
}

export async function burnedRegister(chain: Subtensor, r: RegisterRequest): Promise<RegisterResult> {
  const existing = await chain.uidOf(r.netuid, r.hotkey);
  if (existing !== null) return { uid: existing, alreadyRegistered: true, costRao: null, included: null };
  const [costRao, balanceRao] = await Promise.all([chain.burnCost(r.netuid), chain.freeBalance(r.coldkey.address)]);
  if (balanceRao < costRao) throw new MinerOpError('insufficient_balance', `insufficient balance: have ${formatTao(balanceRao)}, need ${formatTao(costRao)}`);
  if (r.confirm && !(await r.confirm({ costRao, balanceRao }))) throw new MinerOpError('aborted', 'aborted by the user');
  const signed = await signOnce(call(chain.api, 'subtensorModule', 'burnedRegister')(r.netuid, r.hotkey), r.coldkey);
  let included: IncludedExtrinsic | null = null;
  try {
    included = await sendAndWait(chain.api, signed, { ...r.wait, waitFor: 'finalized', onStatus: r.onStatus });
  } catch (error) {
    // A timeout may hide a registration that landed: chain state decides, never a second burn.
    const uid = error instanceof ExtrinsicError && (error.code === 'timeout' || error.code === 'not_included') ? await chain.uidOf(r.netuid, r.hotkey) : null;
    if (uid === null) throw fromExtrinsicError(error);
    return { uid, alreadyRegistered: false, costRao, included: null };
  }
  const uid = await chain.uidOf(r.netuid, r.hotkey);
  if (uid === null) throw new MinerOpError('dispatch_failed', `registration extrinsic ${included.extrinsicHash} succeeded but hotkey ${r.hotkey} has no uid on netuid ${r.netuid}`);
  return { uid, alreadyRegistered: false, costRao, included };
}

// ── commitment (§4) ─────────────────────────────────────────────────────────────────────────────

export interface CommitRequest {
  readonly netuid: number;
  /** Signs (spec §4 step 5: the hotkey). */
  readonly hotkey: KeyringPair;
  readonly repo: string;
  readonly digest: string;
  /** Raw `Raw<n>` field instead of timelock (test chains without drand only). @default false */
  readonly raw?: boolean;
  /** @default 1 (spec §4 step 3) */
  readonly blocksUntilReveal?: number;
  readonly onStatus?: (status: string) => void;
  /** Inclusion wait bounds (chain/extrinsics.ts defaults). */
  readonly wait?: Pick<WaitOptions, 'timeoutBlocks' | 'timeoutMs'>;
}

export interface CommitResult {
  readonly payload: string;
  readonly blockNumber: number;
  readonly extrinsicHash: string | null;
  /** drand round that unlocks it; null for a raw commitment. */
  readonly revealRound: number | null;
}

/** The `info` argument of `setCommitment` for a payload (pure; exported for tests). */
export function commitmentInfo(payload: string, mode: { raw: true } | { raw: false; encrypted: Uint8Array; revealRound: number }): { fields: unknown[] } {
  if (mode.raw) {
    const bytes = new TextEncoder().encode(payload);
    if (bytes.length > MAX_RAW_COMMITMENT_BYTES) throw new MinerOpError('payload_too_large', `raw commitments hold at most ${MAX_RAW_COMMITMENT_BYTES} bytes; this payload is ${bytes.length}`);
    // The variant is named by BYTE count (the Python SDK used the character count, spec §4).
    return { fields: [{ [`Raw${bytes.length}`]: u8aToHex(bytes) }] };
  }
  // Hex, not Uint8Array: polkadot.js reads a Uint8Array given for `Bytes` as already length-prefixed.
  return { fields: [{ TimelockEncrypted: { encrypted: u8aToHex(mode.encrypted), reveal_round: mode.revealRound } }] };
}

export async function commitReveal(chain: Subtensor, c: CommitRequest): Promise<CommitResult> {
  let payload: string;
  try {
    payload = formatReveal(c.repo, c.digest);
  } catch (error) {
    throw new MinerOpError('invalid_reveal', (error as Error).message);
  }
  const uid = await chain.uidOf(c.netuid, c.hotkey.address);
  if (uid === null) throw new MinerOpError('not_registered', `hotkey ${c.hotkey.address} is not registered on netuid ${c.netuid} (run albedo register)`);
  let info: { fields: unknown[] };
  let revealRound: number | null = null;
  let encrypted: Uint8Array | null = null;
  if (c.raw) {
    info = commitmentInfo(payload, { raw: true });
  } else {
    const beacon = await readBeacon(chain.api);
    revealRound = commitRevealRound(Math.floor(chain.nowMs() / 1000), c.blocksUntilReveal ?? 1);
    encrypted = timelockEncrypt({ round: revealRound, plaintext: scaleEncodeString(payload), publicKey: beacon.publicKey });
    if (encrypted.length > CHAIN_COMMITMENT_CIPHERTEXT_LIMIT) throw new MinerOpError('payload_too_large', `encrypted commitment is ${encrypted.length} bytes; the chain accepts ${CHAIN_COMMITMENT_CIPHERTEXT_LIMIT}`);
    info = commitmentInfo(payload, { raw: false, encrypted, revealRound });
  }
  const sinceBlock = (await chain.bestBlock()).number;
  const signed = await signOnce(call(chain.api, 'commitments', 'setCommitment')(c.netuid, info), c.hotkey);
  try {
    const included = await sendAndWait(chain.api, signed, { ...c.wait, waitFor: 'finalized', onStatus: c.onStatus });
    return { payload, blockNumber: included.blockNumber, extrinsicHash: included.extrinsicHash, revealRound };
  } catch (error) {
    if (error instanceof ExtrinsicError && (error.code === 'timeout' || error.code === 'not_included')) {
      // The answer was lost, not necessarily the extrinsic: chain state decides, never a second commit.
      const landedAt = await landedCommitBlock(chain, c, { payload, encrypted, sinceBlock });
      if (landedAt !== null) return { payload, blockNumber: landedAt, extrinsicHash: signed.hash.toHex(), revealRound };
    }
    throw fromExtrinsicError(error);
  }
}

/**
 * Block where our commitment landed, judged from state: our exact ciphertext still sealed in
 * `CommitmentOf`, our raw field there, or (already unsealed) our payload revealed since we sent it.
 */
async function landedCommitBlock(chain: Subtensor, c: CommitRequest, ours: { payload: string; encrypted: Uint8Array | null; sinceBlock: number }): Promise<number | null> {
  const stored = await storedCommitment(chain, c.netuid, c.hotkey.address);
  if (stored && stored.block > ours.sinceBlock) {
    if (ours.encrypted && stored.fields.some((f) => f.encrypted && u8aEq(f.encrypted, ours.encrypted as Uint8Array))) return stored.block;
    if (!ours.encrypted && stored.raw.some((bytes) => new TextDecoder().decode(bytes) === ours.payload)) return stored.block;
  }
  if (!ours.encrypted) return null;
  for (const r of await chain.revealedCommitmentsOf(c.netuid, c.hotkey.address)) {
    if (r.block <= ours.sinceBlock) continue;
    const parsed = parseReveal(r.bytes);
    if (parsed.ok && parsed.payload === ours.payload) return stored?.block ?? r.block;
  }
  return null;
}

/** `CommitmentOf(netuid, hotkey)`: its block, the timelocked fields still sealed, and the raw fields; null when absent. */
export async function storedCommitment(
  chain: Subtensor,
  netuid: number,
  hotkey: string,
): Promise<{ block: number; fields: Array<{ revealRound: number | null; encrypted: Uint8Array | null }>; raw: Uint8Array[] } | null> {
  const value = (await storageItem(chain.api, 'commitments', 'commitmentOf')(netuid, hotkey)) as unknown as Option<
    {
      block: { toNumber(): number };
      info: { fields: Array<{ type: string; value: { toU8a(bare: boolean): Uint8Array }; isTimelockEncrypted: boolean; asTimelockEncrypted: { encrypted: Bytes; revealRound: { toNumber(): number } } }> };
    } & Bytes
  >;
  if (value.isNone) return null;
  const reg = value.unwrap();
  return {
    block: reg.block.toNumber(),
    fields: reg.info.fields.map((f) =>
      f.isTimelockEncrypted ? { revealRound: f.asTimelockEncrypted.revealRound.toNumber(), encrypted: f.asTimelockEncrypted.encrypted.toU8a(true) } : { revealRound: null, encrypted: null },
    ),
    raw: reg.info.fields.filter((f) => /^Raw\d+$/.test(f.type)).map((f) => f.value.toU8a(true)),
  };
}

/**
 * Waits until `payload` appears in the hotkey's `RevealedCommitments` at a block ≥ `sinceBlock`
 * (miner-cli.md `albedo commit`: "revealed at block M"). Resolves the reveal block.
 */
export async function waitForReveal(
  chain: Subtensor,
  w: { netuid: number; hotkey: string; payload: string; sinceBlock: number; timeoutMs?: number; pollMs?: number; signal?: AbortSignal },
): Promise<number> {
  const deadline = Date.now() + (w.timeoutMs ?? DEFAULT_REVEAL_WAIT_MS);
  for (;;) {
    for (const r of await chain.revealedCommitmentsOf(w.netuid, w.hotkey)) {
      if (r.block < w.sinceBlock) continue;
      const parsed = parseReveal(r.bytes);
      if (parsed.ok && parsed.payload === w.payload) return r.block;
    }
    if (Date.now() >= deadline) throw new MinerOpError('timeout', `no reveal of ${w.payload} for ${w.hotkey} within ${w.timeoutMs ?? DEFAULT_REVEAL_WAIT_MS} ms (it may still reveal; check with albedo check-commit)`);
    if (w.signal?.aborted) throw new MinerOpError('aborted', 'aborted');
    await new Promise((resolve) => setTimeout(resolve, w.pollMs ?? 2_000));
  }
}
