/**
 * Genesis of the LOCAL STAND-IN dev chain (`albedo-devnet`): subnets with their hyperparameters, endowed
 * accounts, pre-registered neurons and the drand beacon config. Genesis state is a pure function of these
 * options (no clock), so the genesis hash identifies a configuration and a data file written for another
 * configuration is refused on restart.
 */
import { decodeAddress } from '@polkadot/util-crypto';
import type { DevnetBeacon } from './beacon.ts';
import type { TypedState } from './runtime-codec.ts';
import { setFreeBalance } from './runtime-context.ts';
import { writeBeaconConfig, writeGenesisPulses } from './runtime-drand.ts';
import { appendNeuron } from './runtime-subtensor.ts';

/** Printed on startup and served by `system_name`: this is not finney and not a subtensor node. */
export const DEVNET_LABEL = 'albedo-devnet — LOCAL STAND-IN subtensor dev chain (recorded spec-381 metadata; not finney, not a real node)';
export const DEVNET_NODE_NAME = 'albedo-devnet (local stand-in)';
export const DEVNET_CHAIN_NAME = 'Albedo Local Devnet';
export const DEVNET_NODE_VERSION = '0.1.0-local-stand-in';

export const RAO_PER_TAO = 1_000_000_000n;
/** The subnet the project runs on (spec: netuid 97). */
export const DEFAULT_NETUID = 97;

/** Hyperparameters of one genesis subnet. */
export interface SubnetGenesis {
  readonly netuid: number;
  /** Blocks per epoch (`Tempo`). @default 360 (finney's usual) */
  readonly tempo: number;
  /** Registration price in rao (`Burn`). @default 1 TAO */
  readonly burnRao: bigint;
  /** `MaxAllowedUids`; registering on a full subnet replaces the oldest non-immune neuron. @default 256 */
  readonly maxAllowedUids: number;
  /** Blocks a new neuron cannot be replaced (`ImmunityPeriod`). @default 4096 */
  readonly immunityPeriod: number;
  /** `WeightsSetRateLimit` in blocks. @default 100 */
  readonly weightsSetRateLimit: number;
  /** `WeightsVersionKey`; 0 disables the check. @default 0 */
  readonly weightsVersionKey: bigint;
  /** `CommitRevealWeightsEnabled`. @default false (the metadata default is true; the dev chain starts open) */
  readonly commitRevealWeightsEnabled: boolean;
  /** `RevealPeriodEpochs` of CRv4 commits. @default 1 */
  readonly revealPeriodEpochs: number;
  /** `MaxRegistrationsPerBlock`. @default 16 */
  readonly maxRegistrationsPerBlock: number;
  /** `MinAllowedWeights`. @default 1 */
  readonly minAllowedWeights: number;
}

export const DEFAULT_SUBNET: Omit<SubnetGenesis, 'netuid'> = Object.freeze({
  tempo: 360,
  burnRao: RAO_PER_TAO,
  maxAllowedUids: 256,
  immunityPeriod: 4096,
  weightsSetRateLimit: 100,
  weightsVersionKey: 0n,
  commitRevealWeightsEnabled: false,
  revealPeriodEpochs: 1,
  maxRegistrationsPerBlock: 16,
  minAllowedWeights: 1,
});

/** `Commitments.MaxSpace`: bytes a hotkey may commit per subnet epoch (subtensor's default). */
export const DEFAULT_COMMITMENT_MAX_SPACE = 3100;
/** Rao burned by a full `swap_hotkey` (spec 381's `KeySwapCost` constant, 0.1 TAO). */
export const DEFAULT_HOTKEY_SWAP_COST_RAO = 100_000_000n;

export interface GenesisRegistration {
  /** SS58 (any prefix) or 0x-hex public key. */
  readonly hotkey: string;
  readonly coldkey: string;
  /** @default DEFAULT_NETUID */
  readonly netuid?: number;
}

export interface GenesisOptions {
  /** Subnets; unspecified fields take {@link DEFAULT_SUBNET}. @default [{ netuid: 97 }] */
  readonly subnets?: ReadonlyArray<Partial<SubnetGenesis> & { readonly netuid: number }>;
  /** Free balances in rao by SS58 address (or 0x-hex public key). */
  readonly endowments?: Readonly<Record<string, bigint | number>>;
  /** Neurons registered at block 0 (`BlockAtRegistration = 0`), in uid order per subnet. */
  readonly registrations?: readonly GenesisRegistration[];
  /** @default DEFAULT_COMMITMENT_MAX_SPACE */
  readonly commitmentsMaxSpace?: number;
  /** @default DEFAULT_HOTKEY_SWAP_COST_RAO */
  readonly hotkeySwapCostRao?: bigint;
}

export interface ResolvedGenesis {
  readonly subnets: readonly SubnetGenesis[];
  /** [public key hex, rao], sorted by key. */
  readonly endowments: ReadonlyArray<readonly [string, bigint]>;
  readonly registrations: ReadonlyArray<{ readonly hotkey: string; readonly coldkey: string; readonly netuid: number }>;
  readonly commitmentsMaxSpace: number;
  readonly hotkeySwapCostRao: bigint;
}

export class GenesisConfigError extends Error {
  override readonly name = 'GenesisConfigError';
}

function accountHex(address: string, what: string): string {
  try {
    return Buffer.from(decodeAddress(address)).toString('hex');
  } catch {
    throw new GenesisConfigError(`${what}: not an SS58 address or 32-byte hex key: ${address.slice(0, 80)}`);
  }
}

function checkInt(value: number, what: string, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new GenesisConfigError(`${what} must be an integer in [0, ${max}]: ${value}`);
}

/** Validates options and fills defaults. Throws {@link GenesisConfigError}. */
export function resolveGenesis(options: GenesisOptions = {}): ResolvedGenesis {
  const subnets = (options.subnets ?? [{ netuid: DEFAULT_NETUID }]).map((s) => ({ ...DEFAULT_SUBNET, ...s }));
  const seen = new Set<number>();
  for (const s of subnets) {
    checkInt(s.netuid, 'netuid', 4095);
    if (s.netuid === 0) throw new GenesisConfigError('netuid 0 is the root subnet; registrations are not allowed there');
    if (seen.has(s.netuid)) throw new GenesisConfigError(`netuid ${s.netuid} listed twice`);
    seen.add(s.netuid);
    checkInt(s.tempo, 'tempo', 0xffff);
    checkInt(s.maxAllowedUids, 'maxAllowedUids', 0xffff);
    checkInt(s.immunityPeriod, 'immunityPeriod', 0xffff);
    checkInt(s.weightsSetRateLimit, 'weightsSetRateLimit', Number.MAX_SAFE_INTEGER);
    checkInt(s.revealPeriodEpochs, 'revealPeriodEpochs', Number.MAX_SAFE_INTEGER);
    checkInt(s.maxRegistrationsPerBlock, 'maxRegistrationsPerBlock', 0xffff);
    checkInt(s.minAllowedWeights, 'minAllowedWeights', 0xffff);
    if (s.burnRao < 0n || s.weightsVersionKey < 0n) throw new GenesisConfigError('burnRao and weightsVersionKey must be non-negative');
  }
  const endowments = new Map<string, bigint>();
  for (const [address, amount] of Object.entries(options.endowments ?? {})) {
    const rao = BigInt(amount);
    if (rao < 0n) throw new GenesisConfigError(`endowment of ${address} is negative`);
    const key = accountHex(address, 'endowment');
    endowments.set(key, (endowments.get(key) ?? 0n) + rao);
  }
  const registrations = (options.registrations ?? []).map((r) => {
    const netuid = r.netuid ?? DEFAULT_NETUID;
    if (!seen.has(netuid)) throw new GenesisConfigError(`registration on netuid ${netuid}, which is not a genesis subnet`);
    return { hotkey: accountHex(r.hotkey, 'registration hotkey'), coldkey: accountHex(r.coldkey, 'registration coldkey'), netuid };
  });
  const taken = new Set<string>();
  for (const r of registrations) {
    const id = `${r.netuid}:${r.hotkey}`;
    if (taken.has(id)) throw new GenesisConfigError(`hotkey 0x${r.hotkey} registered twice on netuid ${r.netuid}`);
    taken.add(id);
  }
  for (const s of subnets) {
    const count = registrations.filter((r) => r.netuid === s.netuid).length;
    if (count > s.maxAllowedUids) throw new GenesisConfigError(`${count} genesis registrations exceed MaxAllowedUids ${s.maxAllowedUids} on netuid ${s.netuid}`);
  }
  const commitmentsMaxSpace = options.commitmentsMaxSpace ?? DEFAULT_COMMITMENT_MAX_SPACE;
  checkInt(commitmentsMaxSpace, 'commitmentsMaxSpace', 0xffff_ffff);
  const hotkeySwapCostRao = options.hotkeySwapCostRao ?? DEFAULT_HOTKEY_SWAP_COST_RAO;
  if (hotkeySwapCostRao < 0n) throw new GenesisConfigError('hotkeySwapCostRao must be non-negative');
  return {
    subnets,
    endowments: [...endowments.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    registrations,
    commitmentsMaxSpace,
    hotkeySwapCostRao,
  };
}

const hexBytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));

/** Writes the genesis state (block 0). */
export function writeGenesisState(state: TypedState, genesis: ResolvedGenesis, beacon: DevnetBeacon): void {
  const S = 'SubtensorModule';
  state.set('System', 'Number', [], 0);
  for (const [who, rao] of genesis.endowments) setFreeBalance(state, hexBytes(who), rao);
  state.set(S, 'TotalNetworks', [], genesis.subnets.length);
  for (const s of genesis.subnets) {
    const id = [s.netuid];
    state.set(S, 'NetworksAdded', id, true);
    state.set(S, 'NetworkRegistrationAllowed', id, true);
    state.set(S, 'Tempo', id, s.tempo);
    state.set(S, 'Burn', id, s.burnRao);
    state.set(S, 'MaxAllowedUids', id, s.maxAllowedUids);
    state.set(S, 'ImmunityPeriod', id, s.immunityPeriod);
    state.set(S, 'WeightsSetRateLimit', id, s.weightsSetRateLimit);
    state.set(S, 'WeightsVersionKey', id, s.weightsVersionKey);
    state.set(S, 'CommitRevealWeightsEnabled', id, s.commitRevealWeightsEnabled);
    state.set(S, 'RevealPeriodEpochs', id, s.revealPeriodEpochs);
    state.set(S, 'MaxRegistrationsPerBlock', id, s.maxRegistrationsPerBlock);
    state.set(S, 'MinAllowedWeights', id, s.minAllowedWeights);
    state.set(S, 'SubnetworkN', id, 0);
  }
  for (const r of genesis.registrations) appendNeuron(state, r.netuid, hexBytes(r.hotkey), hexBytes(r.coldkey), 0);
  state.set('Commitments', 'MaxSpace', [], genesis.commitmentsMaxSpace);
  writeBeaconConfig(state, beacon);
  writeGenesisPulses(state, beacon);
}

/** Canonical JSON of a resolved genesis (bigints as decimal strings), stored in the data file. */
export function genesisFingerprint(genesis: ResolvedGenesis): string {
  return JSON.stringify(genesis, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
}
