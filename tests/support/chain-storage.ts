/**
 * Builds realistic subtensor storage (keys and SCALE values encoded through the recorded spec-381
 * metadata) in a {@link MemoryStorage}, for the reader's unit tests and `npm run bench -- chain`.
 */
import type { StorageEntry } from '@polkadot/types/primitive/types';
import { compactStripLength, u8aToHex } from '@polkadot/util';
import { encodeAddress } from '@polkadot/util-crypto';
import { recordedRuntime } from '../../chain/metadata.ts';
import { type ReaderCodecs, readerCodecs } from '../../chain/reader-source.ts';
import { scaleEncodeString } from '../../chain/reveal.ts';
import { MemoryStorage } from '../../chain/storage-memory.ts';

export const runtime = recordedRuntime();

function entry(section: string, method: string): StorageEntry {
  const item = (runtime.decorated.query as Record<string, Record<string, StorageEntry> | undefined>)[section]?.[method];
  if (!item) throw new Error(`no storage ${section}.${method}`);
  return item;
}

/** A storage key without the compact length prefix the decorated entry function adds. */
function storageKey(section: string, method: string, ...args: unknown[]): string {
  return u8aToHex(compactStripLength(entry(section, method)(...args))[1]);
}

export function codecsFor(netuid: number): ReaderCodecs & { prefixes: { revealed: string } } {
  const codecs = readerCodecs(runtime.registry, entry, netuid);
  const revealed = codecs.prefixes.revealed;
  if (revealed === null) throw new Error('the recorded spec-381 runtime has RevealedCommitments');
  return { ...codecs, prefixes: { ...codecs.prefixes, revealed } };
}

/** Deterministic distinct SS58 hotkey number `i`. */
export function testHotkey(i: number): string {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, i + 1);
  bytes[31] = 0xa1;
  return encodeAddress(bytes, 42);
}

export function revealedKey(netuid: number, hotkey: string): string {
  return storageKey('commitments', 'revealedCommitments', netuid, hotkey);
}

export function revealedValue(entries: ReadonlyArray<{ payload: string | Uint8Array; block: number }>): string {
  // Hex: polkadot.js reads a Uint8Array given for `Bytes` as already length-prefixed.
  const value = entries.map((e) => [u8aToHex(typeof e.payload === 'string' ? scaleEncodeString(e.payload) : e.payload), e.block]);
  return runtime.registry.createType('Vec<(Bytes, u64)>', value).toHex();
}

export function keysKey(netuid: number, uid: number): string {
  return storageKey('subtensorModule', 'keys', netuid, uid);
}

export function accountValue(ss58: string): string {
  return runtime.registry.createType('AccountId32', ss58).toHex();
}

export function registrationKey(netuid: number, uid: number): string {
  return storageKey('subtensorModule', 'blockAtRegistration', netuid, uid);
}

export function u64Value(n: number): string {
  // toU8a, not toHex: an integer's toHex is its big-endian number, not its SCALE (little-endian) bytes.
  return u8aToHex(runtime.registry.createType('u64', n).toU8a());
}

/** A syntactically valid v7 payload, distinct per (i, n). */
export function v7Payload(i: number, n: number): string {
  return `v7|miner${i}/albedo-qwen3.6-35b-r${n}|sha256:${(i * 1000 + n).toString(16).padStart(64, '0')}`;
}

export { MemoryStorage };
