/**
 * The chain's drand beacon (`Drand.BeaconConfig`): the public key commitments are encrypted to. The
 * reveal-round formulas of spec/chain.md §4 and §6.2 assume quicknet's genesis time and 3 s period, so a
 * beacon with other timing is refused rather than producing rounds the chain would never reach.
 */
import type { ApiPromise } from '@polkadot/api';
import { u8aToHex } from '@polkadot/util';
import { hasStorageItem, storageItem } from './pallets.ts';
import { ChainConfigError } from './provider.ts';
import { DRAND_QUICKNET } from './timelock.ts';

export interface BeaconInfo {
  readonly publicKey: Uint8Array;
  readonly genesisTime: number;
  readonly period: number;
  /** True when the key is drand quicknet's (finney, testnet); false on the local stand-in beacon. */
  readonly isQuicknet: boolean;
}

export async function readBeacon(api: ApiPromise): Promise<BeaconInfo> {
  if (!hasStorageItem(api, 'drand', 'beaconConfig')) throw new ChainConfigError('this runtime has no Drand pallet: timelocked commitments are impossible (use --raw on a test chain)');
  const config = (await storageItem(api, 'drand', 'beaconConfig')()) as unknown as {
    publicKey: { toU8a(bare: boolean): Uint8Array };
    genesisTime: { toNumber(): number };
    period: { toNumber(): number };
  };
  const publicKey = config.publicKey.toU8a(true);
  const beacon = {
    publicKey,
    genesisTime: config.genesisTime.toNumber(),
    period: config.period.toNumber(),
    isQuicknet: u8aToHex(publicKey).slice(2) === DRAND_QUICKNET.publicKeyHex,
  };
  if (publicKey.length !== 96) throw new ChainConfigError(`Drand.BeaconConfig public key is ${publicKey.length} bytes, expected a 96-byte G2 point`);
  if (beacon.genesisTime !== DRAND_QUICKNET.genesisTime || beacon.period !== DRAND_QUICKNET.periodSeconds) {
    throw new ChainConfigError(`the chain's drand beacon has genesis ${beacon.genesisTime} / period ${beacon.period}s; reveal rounds are defined for quicknet timing (${DRAND_QUICKNET.genesisTime} / ${DRAND_QUICKNET.periodSeconds}s)`);
  }
  return beacon;
}
