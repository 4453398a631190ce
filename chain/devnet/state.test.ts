import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseReveal } from '../reveal.ts';
import { hexToBytes } from './protocol.ts';
import { DevChainState, DevRuntimeError, UnknownBlockError, persistedStateSchema } from './state.ts';

const SHA = `sha256:${'1'.repeat(64)}`;
const runtimeError = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof DevRuntimeError) return e.error;
    throw e;
  }
  throw new Error('expected a DevRuntimeError');
};

describe('DevChainState (local stand-in)', () => {
  it('chains block hashes with sha256(parent ‖ u64_be(n) ‖ extrinsic hashes)', () => {
    const s = new DevChainState();
    const genesis = s.bestBlock();
    expect(genesis).toEqual({ number: 0, hash: DevChainState.genesisHash() });
    const { header } = s.produceBlock();
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(1n);
    const expected = `0x${createHash('sha256').update(hexToBytes(genesis.hash)).update(n).digest('hex')}`;
    expect(header).toEqual({ number: 1, hash: expected, parentHash: genesis.hash, extrinsics: [] });
    expect(s.blockHash(1)).toBe(expected);
    expect(s.blockHash(2)).toBeNull();
    // deterministic: a second chain produces the same empty blocks
    const t = new DevChainState();
    t.produceBlock();
    expect(t.bestBlock().hash).toBe(expected);
  });

  it('registers, commits and reveals raw at the inclusion block or later', () => {
    const s = new DevChainState();
    expect(s.register(97, 'alice')).toEqual({ uid: 0, registrationBlock: 0, alreadyRegistered: false });
    expect(s.register(97, 'bob').uid).toBe(1);
    expect(s.register(97, 'alice').alreadyRegistered).toBe(true);
    expect(runtimeError(() => s.submitCommit({ netuid: 97, hotkey: 'carol', reveal: 'x' }))).toBe('AccountNotAllowedCommit');

    s.submitCommit({ netuid: 97, hotkey: 'alice', reveal: `v7|ns/a|${SHA}` });
    s.submitCommit({ netuid: 97, hotkey: 'bob', reveal: `v7|ns/b|${SHA}`, revealAtBlock: 3 });
    const b1 = s.produceBlock().header;
    expect(b1.extrinsics).toHaveLength(2);
    const r1 = s.revealedCommitments(97);
    expect(r1).toEqual([{ hotkey: 'alice', block: 1, blockHash: b1.hash, dataHex: expect.stringMatching(/^0x/) }]);
    const first = r1[0];
    const parsed = first ? parseReveal(hexToBytes(first.dataHex)) : null;
    expect(parsed?.ok && parsed.reveal.repo).toBe('ns/a');

    s.produceBlock();
    const b3 = s.produceBlock().header;
    expect(s.revealedCommitments(97).map((r) => [r.hotkey, r.block, r.blockHash])).toEqual([
      ['alice', 1, b1.hash],
      ['bob', 3, b3.hash],
    ]);
    expect(s.revealedCommitments(97, 2).map((r) => r.hotkey)).toEqual(['alice']);
    expect(s.revealedCommitments(97, 0)).toEqual([]);
    expect(() => s.revealedCommitments(97, 99)).toThrow(UnknownBlockError);
  });

  it('keeps at most 10 reveals per hotkey at a block, oldest dropped', () => {
    const s = new DevChainState();
    s.register(1, 'alice');
    for (let i = 0; i < 12; i++) {
      s.submitCommit({ netuid: 1, hotkey: 'alice', reveal: `r${i}` });
      s.produceBlock();
    }
    const blocks = s.revealedCommitments(1).map((r) => r.block);
    expect(blocks).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(s.revealedCommitments(1, 5).map((r) => r.block)).toEqual([1, 2, 3, 4, 5]);
  });

  it('applies weights in the next block and enforces the rate limit (current − last > limit)', () => {
    const s = new DevChainState({ weightsSetRateLimit: 2 });
    s.register(97, 'val');
    s.register(97, 'm1');
    const w = { netuid: 97, hotkey: 'val', uids: [0, 1], weights: [65535, 100], versionKey: 1 };
    const { extrinsicHash } = s.submitWeights(w);
    expect(s.extrinsicStatus(extrinsicHash)).toEqual({ status: 'pending', queuedForBlock: 1 });
    expect(runtimeError(() => s.submitWeights(w))).toBe('SettingWeightsTooFast'); // already pending
    const b1 = s.produceBlock().header;
    expect(s.extrinsicStatus(extrinsicHash)).toEqual({ status: 'included', block: 1, blockHash: b1.hash, success: true, error: null });
    expect(s.lastWeightsSetBlock(97, 'val')).toBe(1);
    expect(s.weights(97)).toEqual([{ hotkey: 'val', uid: 0, uids: [0, 1], weights: [65535, 100], versionKey: 1, block: 1 }]);
    expect(runtimeError(() => s.submitWeights(w))).toBe('SettingWeightsTooFast'); // next block 2: 2 − 1 ≤ 2
    s.produceBlock();
    expect(runtimeError(() => s.submitWeights(w))).toBe('SettingWeightsTooFast'); // 3 − 1 = 2 ≤ 2
    s.produceBlock();
    expect(s.submitWeights(w).queuedForBlock).toBe(4); // 4 − 1 = 3 > 2
    expect(s.extrinsicStatus(`0x${'0'.repeat(64)}`)).toEqual({ status: 'unknown' });
  });

  it('validates weight payloads like the runtime', () => {
    const s = new DevChainState({ weightsVersionKey: 5 });
    s.register(97, 'val');
    const base = { netuid: 97, hotkey: 'val', uids: [0], weights: [1], versionKey: 5 };
    expect(runtimeError(() => s.submitWeights({ ...base, hotkey: 'nobody' }))).toBe('HotKeyNotRegisteredInSubNet');
    expect(runtimeError(() => s.submitWeights({ ...base, weights: [1, 2] }))).toBe('WeightVecNotEqualSize');
    expect(runtimeError(() => s.submitWeights({ ...base, uids: [], weights: [] }))).toBe('WeightVecLengthIsLow');
    expect(runtimeError(() => s.submitWeights({ ...base, uids: [0, 0], weights: [1, 1] }))).toBe('DuplicateUids');
    expect(runtimeError(() => s.submitWeights({ ...base, uids: [3] }))).toBe('UidVecContainInvalidOne');
    expect(runtimeError(() => s.submitWeights({ ...base, versionKey: 4 }))).toBe('IncorrectWeightVersionKey');
    expect(s.submitWeights(base).queuedForBlock).toBe(1);
  });

  it('a dispatch-time failure is recorded on the extrinsic (deregistered before inclusion)', () => {
    const s = new DevChainState();
    s.register(97, 'val');
    const { extrinsicHash } = s.submitWeights({ netuid: 97, hotkey: 'val', uids: [0], weights: [1], versionKey: 0 });
    s.register(97, 'usurper', 0); // replaces uid 0 ⇒ val is no longer registered
    expect(s.hotkeyOf(97, 0)).toBe('usurper');
    expect(s.uidOf(97, 'val')).toBeNull();
    s.produceBlock();
    expect(s.extrinsicStatus(extrinsicHash)).toMatchObject({ status: 'included', success: false, error: 'HotKeyNotRegisteredInSubNet' });
    expect(s.lastWeightsSetBlock(97, 'val')).toBeNull();
  });

  it('round-trips through the persisted JSON, including awkward hotkey names', () => {
    const s = new DevChainState();
    s.register(97, '__proto__');
    s.register(97, 'constructor');
    s.submitCommit({ netuid: 97, hotkey: '__proto__', dataHex: '0xff00' });
    s.submitCommit({ netuid: 97, hotkey: 'constructor', reveal: 'later', revealAtBlock: 5 });
    s.submitWeights({ netuid: 97, hotkey: 'constructor', uids: [0, 1], weights: [1, 2], versionKey: 0 });
    s.produceBlock();
    const json = JSON.parse(JSON.stringify(s.toJSON())) as unknown;
    const restored = new DevChainState({}, persistedStateSchema.parse(json));
    expect(restored.toJSON()).toEqual(s.toJSON());
    expect(restored.revealedCommitments(97)).toEqual([{ hotkey: '__proto__', block: 1, blockHash: s.bestBlock().hash, dataHex: '0xff00' }]);
    expect(restored.lastWeightsSetBlock(97, 'constructor')).toBe(1);
    expect(restored.lastWeightsSetBlock(97, 'toString')).toBeNull();
    for (let i = 0; i < 4; i++) restored.produceBlock();
    expect(restored.revealedCommitments(97).map((r) => r.hotkey)).toEqual(['__proto__', 'constructor']);
  });

  it('prunes old headers but keeps reveal block hashes', () => {
    const s = new DevChainState({ retainBlocks: 3 });
    s.register(1, 'a');
    s.submitCommit({ netuid: 1, hotkey: 'a', reveal: 'x' });
    const h1 = s.produceBlock().header.hash;
    for (let i = 0; i < 5; i++) s.produceBlock();
    expect(s.blockHash(1)).toBeNull();
    expect(s.blockHash(6)).toBe(s.bestBlock().hash);
    expect(s.revealedCommitments(1)[0]?.blockHash).toBe(h1);
  });
});

describe('DevChainState limits', () => {
  it('bounds delayed reveals', () => {
    const s = new DevChainState();
    s.register(1, 'a');
    expect(runtimeError(() => s.submitCommit({ netuid: 1, hotkey: 'a', reveal: 'x', revealAtBlock: 100_001 }))).toBe('RevealTooFarAhead');
    expect(s.submitCommit({ netuid: 1, hotkey: 'a', reveal: 'x', revealAtBlock: 100_000 }).queuedForBlock).toBe(1);
  });
});
