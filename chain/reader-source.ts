/**
 * The chain reader's view of a live subtensor (`ChainReaderSource` over `Subtensor`), and the storage
 * codecs it uses: prefixes, key arguments and value types all come from the runtime's metadata, so the
 * reader never touches a SCALE layout. The codecs also work on a decorated recorded runtime
 * (chain/metadata.ts), which is how the tests and the benchmark build realistic storage.
 */
import { StorageKey } from '@polkadot/types';
import type { StorageEntry } from '@polkadot/types/primitive/types';
import type { Codec, Registry } from '@polkadot/types-codec/types';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { hasStorageItem, storageItem } from './pallets.ts';
import { ChainConfigError } from './provider.ts';
import type { ChainReaderSource } from './reader.ts';
import { type Subtensor, ZERO_ACCOUNT_SS58 } from './subtensor.ts';

type Num = { toNumber(): number };
type EntryOf = (section: string, method: string) => StorageEntry | undefined;

export type ReaderCodecs = Pick<ChainReaderSource, 'prefixes' | 'revealCodec' | 'rawCommitmentCodec' | 'metagraphCodec'>;

/** Decodes a raw storage value with the entry's metadata type. */
export function decodeStorageValue(registry: Registry, entry: StorageEntry, hex: string): Codec {
  const typeId = entry.meta.type.isMap ? entry.meta.type.asMap.value : entry.meta.type.asPlain;
  // Bytes, not the hex string: polkadot.js reads a hex string given for an integer as a big-endian number.
  return registry.createType(registry.createLookupType(typeId), hexToU8a(hex));
}

/** The reader's prefixes and decoders for `netuid`, from any metadata-decorated storage entries. */
export function readerCodecs(registry: Registry, entryOf: EntryOf, netuid: number): ReaderCodecs {
  const required = (section: string, method: string): StorageEntry => {
    const entry = entryOf(section, method);
    if (!entry) throw new ChainConfigError(`this runtime has no storage item ${section}.${method}`);
    return entry;
  };
  // Older runtimes (e.g. spec 218) have no RevealedCommitments: only the raw fallback can read them.
  const revealed = entryOf('commitments', 'revealedCommitments');
  const commitmentOf = required('commitments', 'commitmentOf');
  const keys = required('subtensorModule', 'keys');
  const blockAtRegistration = required('subtensorModule', 'blockAtRegistration');
  const argsOf = (entry: StorageEntry) => (key: string): Codec[] => {
    const storageKey = new StorageKey(registry, key);
    storageKey.setMeta(entry.meta, entry.section, entry.method);
    return storageKey.args;
  };
  // Resolved on first use: on runtimes without the item no reveal key is ever decoded.
  let revealedArgs: ((key: string) => Codec[]) | undefined;
  const revealArgs = (key: string) => {
    revealedArgs ??= argsOf(required('commitments', 'revealedCommitments'));
    return revealedArgs(key);
  };
  const commitmentArgs = argsOf(commitmentOf);
  const keysArgs = argsOf(keys);
  return {
    prefixes: {
      revealed: revealed ? u8aToHex(revealed.keyPrefix(netuid)) : null,
      commitmentOf: u8aToHex(commitmentOf.keyPrefix(netuid)),
      keys: u8aToHex(keys.keyPrefix(netuid)),
      blockAtRegistration: u8aToHex(blockAtRegistration.keyPrefix(netuid)),
    },
    revealCodec: {
      hotkeyOfKey: (key) => String(revealArgs(key)[1]),
      decodeEntries: (hex) =>
        (decodeStorageValue(registry, revealed ?? required('commitments', 'revealedCommitments'), hex) as unknown as Array<[Codec, Num]>).map(([bytes, block]) => ({
          bytes: bytes.toU8a(true),
          block: block.toNumber(),
        })),
    },
    rawCommitmentCodec: {
      hotkeyOfKey: (key) => String(commitmentArgs(key)[1]),
      decodeEntries: (hex) => {
        const value = decodeStorageValue(registry, commitmentOf, hex) as unknown as { block: Num; info: { fields: Array<{ type: string; value: Codec }> } };
        // Raw fields hold plain UTF-8 (no SCALE prefix); their block is the registration's (spec §2.1).
        return value.info.fields.filter((f) => /^Raw\d+$/.test(f.type)).map((f) => ({ bytes: f.value.toU8a(true), block: value.block.toNumber() }));
      },
    },
    metagraphCodec: {
      uidOfKey: (key) => (keysArgs(key)[1] as unknown as Num).toNumber(),
      hotkeyOfValue: (hex) => {
        const hotkey = String(decodeStorageValue(registry, keys, hex));
        return hotkey === ZERO_ACCOUNT_SS58 ? null : hotkey;
      },
      blockOfValue: (hex) => (decodeStorageValue(registry, blockAtRegistration, hex) as unknown as Num).toNumber(),
    },
  };
}

export function subtensorReaderSource(chain: Subtensor, netuid: number): ChainReaderSource {
  return {
    bestBlock: () => chain.bestBlock(),
    blockHash: (n) => chain.blockHash(n),
    ownerOf: (hotkey, atBlock) => chain.ownerOf(hotkey, atBlock),
    storage: chain.rawStorage(),
    ...readerCodecs(chain.api.registry, (section, method) => (hasStorageItem(chain.api, section, method) ? storageItem(chain.api, section, method).creator : undefined), netuid),
    onReconnect: (listener) => chain.onReconnect(listener),
  };
}
