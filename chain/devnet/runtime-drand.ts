/**
 * `Drand` pallet of the LOCAL STAND-IN dev chain. On subtensor an offchain worker fetches pulses from
 * drand and submits them in an unsigned `write_pulse`; here the block builder writes them directly at
 * block start (phase `Initialization`) from the configured beacon, for every round up to the block's
 * time, catching up at most `maxPulsesPerBlock` rounds per block (like the real worker's bounded fetch).
 */
import { stringToHex, u8aToHex } from '@polkadot/util';
import type { BeaconPulse, DevnetBeacon } from './beacon.ts';
import { codecNumber, type TypedState } from './runtime-codec.ts';
import type { PalletCtx } from './runtime-context.ts';

const D = 'Drand';

/** Writes `Drand.BeaconConfig` for `beacon` (genesis). */
export function writeBeaconConfig(state: TypedState, beacon: DevnetBeacon): void {
  state.set(D, 'BeaconConfig', [], {
    publicKey: u8aToHex(beacon.publicKey),
    period: beacon.period,
    genesisTime: beacon.genesisTime,
    hash: u8aToHex(beacon.chainHash),
    groupHash: u8aToHex(beacon.groupHash),
    schemeId: stringToHex(beacon.schemeId),
    metadata: { beaconId: stringToHex(beacon.beaconId) },
  });
}

export function writePulse(state: TypedState, pulse: BeaconPulse): void {
  state.set(D, 'Pulses', [pulse.round], { round: pulse.round, randomness: u8aToHex(pulse.randomness), signature: u8aToHex(pulse.signature) });
}

/** Genesis pulses (recorded mode) and the round bookkeeping items. */
export function writeGenesisPulses(state: TypedState, beacon: DevnetBeacon): void {
  const pulses = beacon.genesisPulses();
  for (const pulse of pulses) writePulse(state, pulse);
  if (pulses.length === 0) return;
  state.set(D, 'LastStoredRound', [], Math.max(...pulses.map((p) => p.round)));
  state.set(D, 'OldestStoredRound', [], Math.min(...pulses.map((p) => p.round)));
}

/** Stores the pulses due at the block's time and prunes beyond `maxStoredPulses`. */
export function storeDuePulses(ctx: PalletCtx): void {
  const { state, beacon, config } = ctx;
  const current = beacon.roundAt(Math.floor(ctx.nowMs / 1000));
  const last = codecNumber(state.getOrDefault(D, 'LastStoredRound'), 'LastStoredRound');
  // First pulse of a fresh chain: start at the current round, not at round 1 (26M rounds ago).
  const from = last === 0 ? current : last + 1;
  const to = Math.min(current, from + config.maxPulsesPerBlock - 1);
  if (current === 0 || from > to) return;
  const rounds: number[] = [];
  for (let round = from; round <= to; round++) {
    const pulse = beacon.pulse(round);
    if (pulse === null) break; // recorded beacon: cannot sign
    writePulse(state, pulse);
    rounds.push(round);
  }
  if (rounds.length === 0) return;
  const newest = rounds[rounds.length - 1] as number;
  state.set(D, 'LastStoredRound', [], newest);
  let oldest = codecNumber(state.getOrDefault(D, 'OldestStoredRound'), 'OldestStoredRound');
  if (oldest === 0) oldest = from;
  const firstOldest = oldest;
  while (newest - oldest + 1 > config.maxStoredPulses) {
    state.remove(D, 'Pulses', [oldest]);
    oldest++;
  }
  if (oldest !== firstOldest || codecNumber(state.getOrDefault(D, 'OldestStoredRound')) === 0) state.set(D, 'OldestStoredRound', [], oldest);
  ctx.emit(D, 'NewPulse', [rounds]);
}
