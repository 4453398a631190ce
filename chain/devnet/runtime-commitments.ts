/**
 * `Commitments` pallet of the LOCAL STAND-IN dev chain: `set_commitment` and the per-block reveal of
 * timelocked fields, following subtensor's pallet (spec 381): space limit per subnet epoch, the
 * `TimelockedIndex` set, reveal at the first block whose state has `Drand.Pulses[reveal_round]`, at most
 * 10 reveals kept per hotkey, and removal of the revealed fields from `CommitmentOf` (the whole entry
 * goes when nothing else is left). Raw fields stay in `CommitmentOf` and never reach
 * `RevealedCommitments`.
 */
import { u8aToHex } from '@polkadot/util';
import { TimelockError, timelockDecrypt } from '../timelock.ts';
import { codecArray, codecBytes, codecField, codecNumber, type TypedState } from './runtime-codec.ts';
import { type PalletCtx, fail } from './runtime-context.ts';
import { epochIndex, uidOf } from './runtime-subtensor.ts';

const C = 'Commitments';

/** Reveals kept per (netuid, hotkey) in `RevealedCommitments`; the oldest are dropped (subtensor's `MAX_REVEALS`). */
export const MAX_REVEALS = 10;

/** Minimum space one `set_commitment` consumes, whatever its size (subtensor's `min_used_space`). */
export const MIN_COMMITMENT_SPACE = 100;

/** Size limits the chain enforces when it decodes a call (BoundedVec bounds). */
export const COMMITMENT_BOUNDS = { raw: 128, timelockEncrypted: 1024, bigRaw: 512 } as const;

/** A `Data` enum codec: variant name and value. */
interface DataCodec {
  readonly type: string;
  readonly value: unknown;
  readonly isTimelockEncrypted?: boolean;
}

function asData(field: unknown): DataCodec {
  if (typeof field === 'object' && field !== null && 'type' in field && typeof field.type === 'string' && 'value' in field) {
    return field as DataCodec;
  }
  throw new Error('commitment field is not a Data enum');
}

/** `Data::len_for_rate_limit`: byte length of the payload (hash variants 32, None/flags 0). */
function spaceOf(field: DataCodec): number {
  if (field.type === 'None' || field.type === 'ResetBondsFlag') return 0;
  if (field.type === 'TimelockEncrypted') return codecBytes(codecField(field.value, 'encrypted')).length;
  return codecBytes(field.value).length;
}

/**
 * Call-level bounds of `CommitmentInfo` that subtensor enforces while decoding (an oversize field makes
 * the extrinsic undecodable there). Returns a reason, or `null` when the info is within bounds.
 */
export function commitmentInfoBoundsViolation(info: unknown): string | null {
  for (const f of codecArray(codecField(info, 'fields'), 'fields').map(asData)) {
    if (f.type === 'TimelockEncrypted' && spaceOf(f) > COMMITMENT_BOUNDS.timelockEncrypted) return `TimelockEncrypted ciphertext exceeds ${COMMITMENT_BOUNDS.timelockEncrypted} bytes`;
    if (f.type === 'BigRaw' && spaceOf(f) > COMMITMENT_BOUNDS.bigRaw) return `BigRaw exceeds ${COMMITMENT_BOUNDS.bigRaw} bytes`;
  }
  return null;
}

function maxFields(ctx: PalletCtx): number {
  const consts = ctx.codec.runtime.decorated.consts as Record<string, Record<string, unknown> | undefined>;
  return codecNumber(consts.commitments?.maxFields, 'Commitments.MaxFields');
}

function timelockedIndex(state: TypedState): unknown[][] {
  return codecArray(state.getOrDefault(C, 'TimelockedIndex')).map((entry) => codecArray(entry));
}

function setTimelockedIndex(state: TypedState, netuid: number, who: Uint8Array, present: boolean): void {
  const whoHex = Buffer.from(who).toString('hex');
  const others = timelockedIndex(state).filter(([n, w]) => !(codecNumber(n) === netuid && Buffer.from(codecBytes(w)).toString('hex') === whoHex));
  const next: unknown[][] = present ? [...others, [netuid, who]] : others;
  state.set(C, 'TimelockedIndex', [], next);
}

/** `set_commitment(netuid, info)` signed by a hotkey registered on `netuid`. Free (no deposit). */
export function setCommitment(ctx: PalletCtx, who: Uint8Array, netuid: number, info: unknown): void {
  const { state } = ctx;
  if (uidOf(state, netuid, who) === null) fail(C, 'AccountNotAllowedCommit');
  const fields = codecArray(codecField(info, 'fields'), 'fields').map(asData);
  if (fields.length > maxFields(ctx)) fail(C, 'TooManyFieldsInCommitmentInfo');

  const required = Math.max(MIN_COMMITMENT_SPACE, fields.reduce((sum, f) => sum + spaceOf(f), 0));
  const epoch = epochIndex(state, netuid, ctx.block);
  const usage = state.get(C, 'UsedSpaceOf', [netuid, who]);
  const usedBefore = usage !== null && codecNumber(codecField(usage, 'lastEpoch')) === epoch ? codecNumber(codecField(usage, 'usedSpace')) : 0;
  const maxSpace = codecNumber(state.getOrDefault(C, 'MaxSpace'), 'MaxSpace');
  if (usedBefore + required > maxSpace) fail(C, 'SpaceLimitExceeded');
  state.set(C, 'UsedSpaceOf', [netuid, who], { lastEpoch: epoch, usedSpace: usedBefore + required });

  state.set(C, 'CommitmentOf', [netuid, who], { deposit: 0, block: ctx.block, info });
  state.set(C, 'LastCommitment', [netuid, who], ctx.block);
  const timelocked = fields.find((f) => f.type === 'TimelockEncrypted');
  if (timelocked !== undefined) {
    ctx.emit(C, 'TimelockCommitment', [netuid, who, codecField(timelocked.value, 'revealRound')]);
    setTimelockedIndex(state, netuid, who, true);
  } else {
    ctx.emit(C, 'Commitment', [netuid, who]);
    setTimelockedIndex(state, netuid, who, false);
  }
}

/**
 * `reveal_timelocked_commitments` (the pallet's `on_initialize`): decrypts every timelocked field whose
 * round has a pulse with `timelockDecrypt(ciphertext, signature)`, appends `(plaintext, block)` to
 * `RevealedCommitments` and removes the field from `CommitmentOf`. A field that fails to decrypt is
 * dropped silently, like the chain (logged at debug level here).
 */
export function revealTimelockedCommitments(ctx: PalletCtx): void {
  const { state } = ctx;
  for (const [netuidCodec, whoCodec] of timelockedIndex(state)) {
    const netuid = codecNumber(netuidCodec, 'netuid');
    const who = codecBytes(whoCodec);
    const registration = state.get(C, 'CommitmentOf', [netuid, who]);
    if (registration === null) {
      setTimelockedIndex(state, netuid, who, false);
      continue;
    }
    const info = codecField(registration, 'info');
    const fields = codecArray(codecField(info, 'fields'), 'fields').map(asData);
    const remain: DataCodec[] = [];
    const revealed: Uint8Array[] = [];
    for (const field of fields) {
      if (field.type !== 'TimelockEncrypted') {
        remain.push(field);
        continue;
      }
      const round = codecField(field.value, 'revealRound');
      const pulse = state.get('Drand', 'Pulses', [round]);
      if (pulse === null) {
        remain.push(field);
        continue;
      }
      try {
        const plaintext = timelockDecrypt(codecBytes(codecField(field.value, 'encrypted')), codecBytes(codecField(pulse, 'signature')));
        if (plaintext.length === 0) ctx.debug(`timelocked commitment of 0x${Buffer.from(who).toString('hex')} decrypted to nothing; dropped`);
        else revealed.push(plaintext);
      } catch (e) {
        if (!(e instanceof TimelockError)) throw e;
        ctx.debug(`timelocked commitment of 0x${Buffer.from(who).toString('hex')} on netuid ${netuid} does not decrypt (${e.code}); dropped`);
      }
    }
    if (revealed.length > 0) {
      const existing = codecArray(state.getOrDefault(C, 'RevealedCommitments', [netuid, who]));
      const next: unknown[] = [...existing];
      for (const bytes of revealed) {
        next.push([u8aToHex(bytes), ctx.block]);
        ctx.emit(C, 'CommitmentRevealed', [netuid, who]);
      }
      state.set(C, 'RevealedCommitments', [netuid, who], next.slice(Math.max(0, next.length - MAX_REVEALS)));
    }
    if (remain.length === fields.length) continue;
    if (remain.length === 0) {
      state.remove(C, 'CommitmentOf', [netuid, who]);
      setTimelockedIndex(state, netuid, who, false);
    } else {
      state.set(C, 'CommitmentOf', [netuid, who], { deposit: codecField(registration, 'deposit'), block: codecField(registration, 'block'), info: { fields: remain } });
      if (!remain.some((f) => f.type === 'TimelockEncrypted')) setTimelockedIndex(state, netuid, who, false);
    }
  }
}
