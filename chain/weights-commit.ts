/**
 * Commit-reveal v4 weight commits (spec/chain.md §6.2 step 5): the SCALE payload, its reveal round and
 * its timelock encryption to the chain's drand beacon.
 */
import { TypeRegistry } from '@polkadot/types';
import { u8aToHex } from '@polkadot/util';
import { readBeacon } from './beacon-config.ts';
import type { Subtensor, SubnetWeightParams } from './subtensor.ts';
import { timelockEncrypt, weightsRevealRound } from './timelock.ts';

const registry = new TypeRegistry();
const PAYLOAD_TYPE = '{"hotkey":"Vec<u8>","uids":"Vec<u16>","values":"Vec<u16>","version_key":"u64"}';

/** SCALE `{hotkey: Vec<u8>, uids: Vec<u16>, values: Vec<u16>, version_key: u64}` (the CRv4 plaintext). */
export function encodeWeightsCommitPayload(p: { hotkeyPublicKey: Uint8Array; uids: readonly number[]; weights: readonly number[]; versionKey: number }): Uint8Array {
  return registry.createType(PAYLOAD_TYPE, { hotkey: u8aToHex(p.hotkeyPublicKey), uids: [...p.uids], values: [...p.weights], version_key: p.versionKey }).toU8a();
}

/** Decodes {@link encodeWeightsCommitPayload} (used by the dev chain when it reveals a commit). */
export function decodeWeightsCommitPayload(bytes: Uint8Array): { hotkeyPublicKey: Uint8Array; uids: number[]; weights: number[]; versionKey: bigint } {
  // Struct.get, not property access: `values` is also a method of every polkadot.js Struct.
  const decoded = registry.createType(PAYLOAD_TYPE, bytes) as unknown as { get(field: string): unknown };
  const list = (field: string) => (decoded.get(field) as Array<{ toNumber(): number }>).map((v) => v.toNumber());
  return {
    hotkeyPublicKey: (decoded.get('hotkey') as { toU8a(bare: boolean): Uint8Array }).toU8a(true),
    uids: list('uids'),
    weights: list('values'),
    versionKey: (decoded.get('version_key') as { toBigInt(): bigint }).toBigInt(),
  };
}

export async function encryptWeightsCommit(
  chain: Subtensor,
  p: {
    netuid: number;
    hotkeyPublicKey: Uint8Array;
    uids: readonly number[];
    weights: readonly number[];
    versionKey: number;
    currentBlock: number;
    params: SubnetWeightParams;
    nowMs: number;
  },
): Promise<{ ciphertext: Uint8Array; revealRound: number }> {
  const beacon = await readBeacon(chain.api);
  const revealRound = weightsRevealRound({
    nowUnixSeconds: Math.floor(p.nowMs / 1000),
    currentBlock: p.currentBlock,
    netuid: p.netuid,
    tempo: p.params.tempo,
    revealPeriodEpochs: p.params.revealPeriodEpochs,
  });
  const plaintext = encodeWeightsCommitPayload(p);
  return { ciphertext: timelockEncrypt({ round: revealRound, plaintext, publicKey: beacon.publicKey }), revealRound };
}
