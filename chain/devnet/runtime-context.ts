/**
 * What pallet logic of the LOCAL STAND-IN dev chain sees while a block is built: typed state, the block
 * number and time, an event sink, and the one way to fail a dispatch (`fail(pallet, ErrorName)`), which
 * the block builder turns into `System.ExtrinsicFailed { dispatchError: Module {…} }`.
 */
import type { Codec } from '@polkadot/types/types';
import type { DevnetBeacon } from './beacon.ts';
import { type PalletName, type RuntimeCodec, type TypedState, codecBigInt, codecField, codecNumber } from './runtime-codec.ts';

/** Chain-wide settings the pallets read that are not storage items. */
export interface PalletConfig {
  /** Rao burned by a full `swap_hotkey` (subtensor's `KeySwapCost`). */
  readonly hotkeySwapCostRao: bigint;
  /** Most drand pulses written in one block while catching up (signing costs ~15 ms each). */
  readonly maxPulsesPerBlock: number;
  /** Most pulses kept in `Drand.Pulses`; older rounds are removed (`Drand.OldestStoredRound`). */
  readonly maxStoredPulses: number;
}

export interface PalletCtx {
  readonly state: TypedState;
  readonly codec: RuntimeCodec;
  /** Number of the block being built. */
  readonly block: number;
  /** `Timestamp.Now` of the block being built (ms). */
  readonly nowMs: number;
  readonly beacon: DevnetBeacon;
  readonly config: PalletConfig;
  emit(pallet: PalletName, event: string, args: readonly unknown[]): void;
  /** Diagnostics that a real node would only print at debug level (e.g. an undecryptable commitment). */
  debug(line: string): void;
}

/** A dispatch that failed with a pallet error; names are checked against the metadata when encoded. */
export class DispatchFailure extends Error {
  override readonly name = 'DispatchFailure';
  readonly pallet: PalletName;
  readonly error: string;

  constructor(pallet: PalletName, error: string) {
    super(`${pallet}.${error}`);
    this.pallet = pallet;
    this.error = error;
  }
}

/** Fails the current dispatch with `pallet::Error::<name>`. */
export function fail(pallet: PalletName, error: string): never {
  throw new DispatchFailure(pallet, error);
}

/** `System.Account` fields we read and write (balances in rao). */
export interface AccountData {
  readonly nonce: number;
  readonly consumers: number;
  readonly providers: number;
  readonly sufficients: number;
  readonly free: bigint;
  readonly reserved: bigint;
  readonly frozen: bigint;
  readonly flags: bigint;
}

export function readAccount(state: TypedState, who: Uint8Array): AccountData {
  const info: Codec = state.getOrDefault('System', 'Account', [who]);
  const data = codecField(info, 'data');
  return {
    nonce: codecNumber(codecField(info, 'nonce')),
    consumers: codecNumber(codecField(info, 'consumers')),
    providers: codecNumber(codecField(info, 'providers')),
    sufficients: codecNumber(codecField(info, 'sufficients')),
    free: codecBigInt(codecField(data, 'free')),
    reserved: codecBigInt(codecField(data, 'reserved')),
    frozen: codecBigInt(codecField(data, 'frozen')),
    flags: codecBigInt(codecField(data, 'flags')),
  };
}

export function writeAccount(state: TypedState, who: Uint8Array, a: AccountData): void {
  // An account with funds needs a provider reference; substrate creates it on the first deposit.
  const providers = a.providers === 0 && a.free > 0n ? 1 : a.providers;
  state.set('System', 'Account', [who], {
    nonce: a.nonce,
    consumers: a.consumers,
    providers,
    sufficients: a.sufficients,
    data: { free: a.free, reserved: a.reserved, frozen: a.frozen, flags: a.flags },
  });
}

/** Sets the free balance (creating the account if needed). */
export function setFreeBalance(state: TypedState, who: Uint8Array, free: bigint): void {
  writeAccount(state, who, { ...readAccount(state, who), free });
}

/** Bytes equality for account ids. */
export function sameAccount(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
