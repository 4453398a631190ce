import { describe, expect, it } from 'vitest';
import type { Db } from '../persistence/db.ts';
import { codecsFor, MemoryStorage } from '../tests/support/chain-storage.ts';
import { ChainConfigError } from './provider.ts';
import { ChainReader, type ChainReaderSource } from './reader.ts';

// The constructor never touches the database; these tests are about configuration only.
const unusedDb = {} as Db;

function sourceWithoutRevealedCommitments(): ChainReaderSource {
  const codecs = codecsFor(97);
  const storage = new MemoryStorage();
  return {
    bestBlock: async () => ({ number: 0, hash: '0x00' }),
    blockHash: async () => '0x00',
    ownerOf: async () => null,
    storage,
    ...codecs,
    prefixes: { ...codecs.prefixes, revealed: null },
  };
}

describe('ChainReader on a runtime without Commitments.RevealedCommitments (e.g. spec 218)', () => {
  it('refuses to start unless raw commitments are to be read, and says which setting to change', () => {
    const build = (readRawCommitments: boolean) =>
      new ChainReader({ db: unusedDb, source: sourceWithoutRevealedCommitments(), netuid: 97, readRawCommitments, ingest: async () => ({ created: false }) });
    expect(() => build(false)).toThrow(ChainConfigError);
    expect(() => build(false)).toThrow(/CHAIN_READ_RAW_COMMITMENTS=1/);
    expect(() => build(true).stop()).not.toThrow();
  });
});
