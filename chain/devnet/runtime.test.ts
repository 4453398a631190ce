import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Codec } from '@polkadot/types/types';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeScaleString, timelockEncrypt, verifyDrandSignature } from '../timelock.ts';
import { encodeWeightsCommitPayload } from '../weights-commit.ts';
import { type GenesisOptions, RAO_PER_TAO } from './genesis.ts';
import { StateHistory } from './runtime-storage.ts';
import { apply, blockEvents, devKey, sign, tx } from './runtime-test-kit.ts';
import { DevnetRuntime, type RuntimeOptions } from './runtime.ts';
import { DataFileError } from './runtime-persistence.ts';
import { PoolError } from './runtime-extrinsics.ts';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const alice = devKey('//Alice');
const bob = devKey('//Bob');
const charlie = devKey('//Charlie');
const dave = devKey('//Dave');
const eve = devKey('//Eve');
const ferdie = devKey('//Ferdie');

const quiet = { log: () => undefined, debug: () => undefined };
const endowed = { [alice.address]: 1000n * RAO_PER_TAO, [bob.address]: 1000n * RAO_PER_TAO };

function create(options: RuntimeOptions = {}): Promise<DevnetRuntime> {
  return DevnetRuntime.create({ now: () => NOW, ...quiet, ...options });
}

function json(codec: Codec | null): unknown {
  return codec === null ? null : codec.toJSON();
}

function poolError(fn: () => unknown): PoolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PoolError) return e;
    throw e;
  }
  throw new Error('expected a PoolError');
}

describe('StateHistory', () => {
  it('answers reads at any retained block and prunes superseded versions', () => {
    const h = new StateHistory();
    h.commit(0, new Map([['0x01', '0xaa'], ['0x02', '0xbb']]));
    h.commit(1, new Map([['0x01', '0xcc'], ['0x02', null], ['0x0102', '0x11']]));
    expect(h.get('0x01', 0)).toBe('0xaa');
    expect(h.get('0x01', 1)).toBe('0xcc');
    expect(h.get('0x02', 1)).toBeNull();
    expect(h.keysAt('0x01', 1)).toEqual(['0x01', '0x0102']);
    expect(h.keysAt('0x', 0)).toEqual(['0x01', '0x02']);
    expect(h.keysAt('0x', 1, 1, '0x01')).toEqual(['0x0102']);
    // No-op writes are not changes.
    expect([...h.commit(2, new Map([['0x01', '0xcc']]))]).toEqual([]);
    for (let b = 3; b < 40; b++) h.commit(b, new Map([['0x03', `0x${b.toString(16).padStart(2, '0')}`]]));
    h.prune(36);
    expect(h.get('0x03', 36)).toBe('0x24');
    expect(h.get('0x01', 39)).toBe('0xcc');
    expect(h.keysAt('0x', 39)).toEqual(['0x01', '0x0102', '0x03']);
  });
});

describe('blocks', () => {
  it('serves header hashes that are blake2 of the SCALE header, linked to their parents', async () => {
    const rt = await create();
    const blocks = rt.produceBlocks(3);
    let parent = rt.blockByNumber(0);
    for (const b of blocks) {
      expect(b.hash).toBe(blake2AsHex(hexToU8a(b.headerHex), 256));
      expect(b.parentHash).toBe(parent?.hash);
      expect(rt.blockByHash(b.hash)).toBe(b);
      parent = b;
    }
    expect(json(rt.read('System', 'Number'))).toBe(3);
    expect(json(rt.read('System', 'BlockHash', [2]))).toBe(blocks[1]?.hash);
    expect(json(rt.read('Timestamp', 'Now'))).toBe(NOW + 2); // clock frozen: +1 ms per block
    expect(rt.finalized().number).toBe(1);
    // Block 0 hash is a pure function of the genesis options.
    expect((await create()).genesisHash).toBe(rt.genesisHash);
    expect((await create({ genesis: { endowments: { [alice.address]: 1n } } })).genesisHash).not.toBe(rt.genesisHash);
  });

  it('finality lag 0 finalizes every block at once; chain time advances with advanceSeconds', async () => {
    const rt = await create({ finalityLag: 0 });
    rt.produceBlocks(2, { advanceSeconds: 60 });
    expect(rt.finalized().hash).toBe(rt.best().hash);
    expect(json(rt.read('Timestamp', 'Now'))).toBe(NOW + 60_000 + 1);
  });

  it('answers like a pruned node outside the state window', async () => {
    const rt = await create({ stateHistory: 4 });
    rt.produceBlocks(8);
    const old = rt.blockByNumber(2)?.hash as string;
    expect(() => rt.getStorage('0x00', old)).toThrow(/State already discarded for 0x/);
    expect(rt.getStorage(rt.codec.key(rt.codec.entry('System', 'Number'), []), rt.blockByNumber(5)?.hash)).not.toBeNull();
  });
});

describe('transaction validation', () => {
  it('rejects bad signatures, stale nonces, duplicates and unsupported calls like substrate', async () => {
    const rt = await create({ genesis: { endowments: endowed } });
    const call = tx(rt).system?.remark?.('0x01') as Codec;
    const good = sign(rt, alice, call);
    const bytes = hexToU8a(good);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1; // last byte is in the call
    const tampered = poolError(() => rt.submit(u8aToHex(bytes)));
    expect([tampered.code, tampered.rpcMessage, tampered.data]).toEqual([1010, 'Invalid Transaction', 'Transaction has a bad signature']);
    expect(poolError(() => rt.submit(sign(rt, alice, call, { genesisHash: `0x${'11'.repeat(32)}` }))).data).toBe('Transaction has a bad signature');
    expect(poolError(() => rt.submit(sign(rt, alice, call, { specVersion: 380 }))).data).toBe('Transaction has a bad signature');
    expect(poolError(() => rt.submit(sign(rt, alice, call, { metadataHash: `0x${'22'.repeat(32)}` }))).data).toBe('Transaction has a bad signature');

    const { hash } = rt.submit(good);
    expect(hash).toBe(blake2AsHex(hexToU8a(good), 256));
    expect(poolError(() => rt.submit(good)).code).toBe(1013);
    rt.produceBlocks(1);
    expect(poolError(() => rt.submit(good)).code).toBe(1012);
    const stale = poolError(() => rt.submit(sign(rt, alice, call, { nonce: 0 })));
    expect([stale.code, stale.data]).toEqual([1010, 'Transaction is outdated']);
    expect(poolError(() => rt.submit('0x1234')).code).toBe(1001);
    const unsupported = poolError(() => rt.submit(sign(rt, alice, tx(rt).subtensorModule?.addStake?.(alice.address, 97, 1) as Codec)));
    expect(unsupported.data).toBe('Transaction call is not expected');
  });

  it('keeps future nonces until the gap closes and expires mortal transactions', async () => {
    const rt = await create({ genesis: { endowments: endowed } });
    const remark = tx(rt).system?.remark?.('0x02') as Codec;
    expect(rt.submit(sign(rt, alice, remark, { nonce: 1 })).status).toBe('future');
    rt.produceBlocks(1);
    expect(rt.accountNonce(alice.publicKey)).toBe(0);
    expect(rt.nextIndex(alice.publicKey)).toBe(0);
    expect(rt.submit(sign(rt, alice, remark, { nonce: 0 })).status).toBe('ready');
    expect(rt.nextIndex(alice.publicKey)).toBe(2);
    const [block] = rt.produceBlocks(1);
    expect(block?.extrinsics).toHaveLength(3);
    expect(rt.accountNonce(alice.publicKey)).toBe(2);

    const birth = rt.best();
    const shortLived = sign(rt, bob, remark, { period: 4, birth });
    rt.produceBlocks(5);
    expect(poolError(() => rt.submit(shortLived)).data).toBe('Transaction has a bad signature');
  });
});

describe('SubtensorModule', () => {
  let rt: DevnetRuntime;
  const call = (section: string, method: string, ...args: unknown[]): Codec => tx(rt)[section]?.[method]?.(...args) as Codec;
  beforeAll(async () => {
    rt = await create({
      genesis: {
        subnets: [
          { netuid: 97, burnRao: 10n * RAO_PER_TAO, maxAllowedUids: 3, immunityPeriod: 5, weightsSetRateLimit: 3, weightsVersionKey: 7n },
          { netuid: 5, commitRevealWeightsEnabled: true },
        ],
        endowments: { [alice.address]: 25n * RAO_PER_TAO, [bob.address]: 100n * RAO_PER_TAO, [charlie.address]: RAO_PER_TAO },
      },
    });
  });

  it('burnedRegister burns the price and writes the neuron', () => {
    const r = apply(rt, alice, call('subtensorModule', 'burnedRegister', 97, bob.address));
    expect(r.result).toBe('ok');
    expect(r.events).toEqual(['subtensorModule.NeuronRegistered', 'system.ExtrinsicSuccess']);
    const block = r.block.number;
    expect(json(rt.read('SubtensorModule', 'Uids', [97, bob.address]))).toBe(0);
    expect(json(rt.read('SubtensorModule', 'Keys', [97, 0]))).toBe(bob.address);
    expect(json(rt.read('SubtensorModule', 'BlockAtRegistration', [97, 0]))).toBe(block);
    expect(json(rt.read('SubtensorModule', 'Owner', [bob.address]))).toBe(alice.address);
    expect(json(rt.read('SubtensorModule', 'OwnedHotkeys', [alice.address]))).toEqual([bob.address]);
    expect(json(rt.read('SubtensorModule', 'SubnetworkN', [97]))).toBe(1);
    expect(json(rt.read('SubtensorModule', 'LastUpdate', [97]))).toEqual([block]);
    const account = rt.read('System', 'Account', [alice.address]) as unknown as { nonce: Codec; data: { free: Codec } };
    expect(BigInt(account.data.free.toString())).toBe(15n * RAO_PER_TAO);
    expect(account.nonce.toJSON()).toBe(1);
  });

  it('refuses a second registration and a poor coldkey (nonce still bumps)', () => {
    expect(apply(rt, alice, call('subtensorModule', 'burnedRegister', 97, bob.address)).result).toBe('HotKeyAlreadyRegisteredInSubNet');
    expect(apply(rt, charlie, call('subtensorModule', 'burnedRegister', 97, dave.address)).result).toBe('NotEnoughBalanceToStake');
    expect(rt.accountNonce(charlie.publicKey)).toBe(1);
    expect(apply(rt, alice, call('subtensorModule', 'burnedRegister', 96, dave.address)).result).toBe('SubnetNotExists');
    expect(apply(rt, bob, call('subtensorModule', 'burnedRegister', 97, bob.address)).result).toBe('HotKeyAlreadyRegisteredInSubNet');
    expect(apply(rt, bob, call('subtensorModule', 'burnedRegister', 97, charlie.address)).result).toBe('ok');
  });

  it('weights: version key, uid checks, rate limit and LastUpdate', () => {
    // bob hotkey = uid 0 registered at an earlier block; rate limit 3.
    rt.produceBlocks(3);
    const set = (dests: number[], weights: number[], version: number) => apply(rt, bob, call('subtensorModule', 'setMechanismWeights', 97, 0, dests, weights, version));
    expect(set([0, 1], [1, 1], 6).result).toBe('IncorrectWeightVersionKey');
    expect(set([0, 5], [1, 1], 7).result).toBe('UidVecContainInvalidOne');
    expect(set([0, 0], [1, 1], 7).result).toBe('DuplicateUids');
    expect(set([0, 1], [1], 7).result).toBe('WeightVecNotEqualSize');
    const ok = set([0, 1], [100, 50], 7);
    expect(ok.result).toBe('ok');
    expect(ok.events).toContain('subtensorModule.WeightsSet');
    expect(json(rt.read('SubtensorModule', 'Weights', [97, 0]))).toEqual([
      [0, 65535],
      [1, 32768],
    ]);
    expect((json(rt.read('SubtensorModule', 'LastUpdate', [97])) as number[])[0]).toBe(ok.block.number);
    expect(set([0], [1], 7).result).toBe('SettingWeightsTooFast');
    rt.produceBlocks(1); // the next block is last + 3: not > 3
    expect(set([0], [1], 7).result).toBe('SettingWeightsTooFast');
    expect(apply(rt, bob, call('subtensorModule', 'setWeights', 97, [0], [1], 9)).result).toBe('ok');
    expect(apply(rt, dave, call('subtensorModule', 'setWeights', 97, [0], [1], 9)).result).toBe('HotKeyNotRegisteredInSubNet');
    expect(apply(rt, bob, call('subtensorModule', 'setWeights', 5, [0], [1], 0)).result).toBe('CommitRevealEnabled');
  });

  it('a registration on a full subnet replaces the oldest non-immune neuron (deregistration)', () => {
    // uids: 0 = bob (alice's), 1 = charlie (bob's). Fill uid 2 with eve.
    expect(apply(rt, bob, call('subtensorModule', 'burnedRegister', 97, eve.address)).result).toBe('ok');
    const uid0Registered = json(rt.read('SubtensorModule', 'BlockAtRegistration', [97, 0]));
    const r = apply(rt, bob, call('subtensorModule', 'burnedRegister', 97, ferdie.address));
    expect(r.result).toBe('ok');
    expect(json(rt.read('SubtensorModule', 'Uids', [97, ferdie.address]))).toBe(0);
    expect(json(rt.read('SubtensorModule', 'Uids', [97, bob.address]))).toBeNull();
    expect(json(rt.read('SubtensorModule', 'Keys', [97, 0]))).toBe(ferdie.address);
    expect(json(rt.read('SubtensorModule', 'BlockAtRegistration', [97, 0]))).toBe(r.block.number);
    expect(rt.read('SubtensorModule', 'Weights', [97, 0])).toBeNull();
    expect(uid0Registered).not.toBe(r.block.number);
  });

  it('refuses to replace when every neuron is immune', async () => {
    const small = await create({ genesis: { subnets: [{ netuid: 97, maxAllowedUids: 2, immunityPeriod: 3 }], endowments: endowed } });
    const register = (hotkey: string) => apply(small, alice, tx(small).subtensorModule?.burnedRegister?.(97, hotkey) as Codec);
    expect(register(bob.address).result).toBe('ok');
    expect(register(charlie.address).result).toBe('ok');
    expect(register(dave.address).result).toBe('NoNeuronIdAvailable');
    small.produceBlocks(2);
    const r = register(dave.address);
    expect(r.result).toBe('ok');
    expect(json(small.read('SubtensorModule', 'Uids', [97, dave.address]))).toBe(0);
    expect(json(small.read('SubtensorModule', 'Uids', [97, bob.address]))).toBeNull();
  });

  it('swapHotkey moves the uid, keeps BlockAtRegistration and removes Owner(old)', () => {
    const zero = '5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM';
    const uid = json(rt.read('SubtensorModule', 'Uids', [97, eve.address]));
    const registered = json(rt.read('SubtensorModule', 'BlockAtRegistration', [97, uid]));
    expect(apply(rt, alice, call('subtensorModule', 'swapHotkey', eve.address, dave.address, null)).result).toBe('NonAssociatedColdKey');
    expect(apply(rt, bob, call('subtensorModule', 'swapHotkey', eve.address, ferdie.address, null)).result).toBe('HotKeyAlreadyRegisteredInSubNet');
    const r = apply(rt, bob, call('subtensorModule', 'swapHotkey', eve.address, dave.address, null));
    expect(r.result).toBe('ok');
    expect(r.events).toContain('subtensorModule.HotkeySwapped');
    expect(json(rt.read('SubtensorModule', 'Uids', [97, dave.address]))).toBe(uid);
    expect(json(rt.read('SubtensorModule', 'Uids', [97, eve.address]))).toBeNull();
    expect(json(rt.read('SubtensorModule', 'Keys', [97, uid]))).toBe(dave.address);
    expect(json(rt.read('SubtensorModule', 'BlockAtRegistration', [97, uid]))).toBe(registered);
    expect(rt.read('SubtensorModule', 'Owner', [eve.address])).toBeNull();
    const api = rt.registry.createType('AccountId32', rt.codec.decodeValue(rt.codec.entry('SubtensorModule', 'Owner'), rt.codec.entry('SubtensorModule', 'Owner').meta.fallback.toHex()).toU8a());
    expect(api.toString()).toBe(zero);
    expect(json(rt.read('SubtensorModule', 'Owner', [dave.address]))).toBe(bob.address);
  });
});

describe('Commitments and timelock reveals', () => {
  const genesis: GenesisOptions = {
    subnets: [{ netuid: 97, tempo: 10 }],
    endowments: endowed,
    registrations: [
      { hotkey: bob.address, coldkey: alice.address },
      { hotkey: charlie.address, coldkey: alice.address },
    ],
  };
  const setCommitment = (rt: DevnetRuntime, fields: unknown[]): Codec => tx(rt).commitments?.setCommitment?.(97, { fields }) as Codec;
  const timelocked = (rt: DevnetRuntime, text: string, round: number) => ({
    TimelockEncrypted: { encrypted: u8aToHex(timelockEncrypt({ round, plaintext: encodeScaleString(text), publicKey: rt.beacon.publicKey })), reveal_round: round },
  });
  const revealed = (rt: DevnetRuntime, who: string): Array<[string, number]> => (json(rt.read('Commitments', 'RevealedCommitments', [97, who])) ?? []) as Array<[string, number]>;

  it('checks registration, field count and space; Raw fields stay in CommitmentOf', async () => {
    const rt = await create({ genesis: { ...genesis, subnets: [{ netuid: 97 }] } });
    expect(apply(rt, dave, setCommitment(rt, [{ Raw4: 'abcd' }])).result).toBe('AccountNotAllowedCommit');
    expect(apply(rt, bob, setCommitment(rt, [{ Raw1: 'a' }, { Raw1: 'b' }, { Raw1: 'c' }, { Raw1: 'd' }])).result).toBe('TooManyFieldsInCommitmentInfo');
    const r = apply(rt, bob, setCommitment(rt, [{ Raw4: 'abcd' }]));
    expect(r.result).toBe('ok');
    expect(r.events).toContain('commitments.Commitment');
    const stored = rt.read('Commitments', 'CommitmentOf', [97, bob.address]) as unknown as { block: Codec; info: { fields: Array<{ type: string }> } };
    expect(stored.block.toJSON()).toBe(r.block.number);
    expect(stored.info.fields.map((f) => f.type)).toEqual(['Raw4']);
    rt.produceBlocks(3, { advanceSeconds: 30 });
    expect(revealed(rt, bob.address)).toEqual([]);
    // 3100 bytes per epoch: 128-byte raw fields cost 128 each (min 100) → the 25th in one epoch fails.
    let result = 'ok';
    for (let i = 0; i < 30 && result === 'ok'; i++) result = apply(rt, charlie, setCommitment(rt, [{ Raw128: `0x${'61'.repeat(128)}` }])).result;
    expect(result).toBe('SpaceLimitExceeded');
  });

  it('reveals a timelocked field when the pulse of its round is stored, keeping 10 reveals', async () => {
    const rt = await create({ genesis });
    rt.produceBlocks(1);
    const round = () => rt.beacon.roundAt(Math.floor(rt.chainTimeMs() / 1000)) + 2;
    const first = apply(rt, bob, setCommitment(rt, [{ Raw2: 'hi' }, timelocked(rt, 'v7|org/model|sha256:00', round())]));
    expect(first.events).toContain('commitments.TimelockCommitment');
    expect(json(rt.read('Commitments', 'TimelockedIndex'))).toEqual([[97, bob.address]]);
    const [block] = rt.produceBlocks(1, { advanceSeconds: 9 });
    const reveals = revealed(rt, bob.address);
    expect(reveals).toHaveLength(1);
    expect(reveals[0]?.[1]).toBe(block?.number);
    expect(hexToU8a(reveals[0]?.[0])).toEqual(encodeScaleString('v7|org/model|sha256:00'));
    expect(blockEvents(rt, block as never).some((e) => e.method === 'CommitmentRevealed' && e.phase === 'init')).toBe(true);
    // The Raw field remains, the revealed one is gone, the index entry too.
    const stored = rt.read('Commitments', 'CommitmentOf', [97, bob.address]) as unknown as { info: { fields: Array<{ type: string }> } };
    expect(stored.info.fields.map((f) => f.type)).toEqual(['Raw2']);
    expect(json(rt.read('Commitments', 'TimelockedIndex'))).toEqual([]);

    for (let i = 1; i <= 10; i++) {
      expect(apply(rt, bob, setCommitment(rt, [timelocked(rt, `reveal ${i}`, round())])).result).toBe('ok');
      rt.produceBlocks(1, { advanceSeconds: 9 });
    }
    const all = revealed(rt, bob.address);
    expect(all).toHaveLength(10);
    expect(new TextDecoder().decode(hexToU8a(all[0]?.[0]).subarray(1))).toBe('reveal 1');
    expect(new TextDecoder().decode(hexToU8a(all[9]?.[0]).subarray(1))).toBe('reveal 10');
    // Only-timelocked commitment: CommitmentOf disappears after the reveal.
    expect(rt.read('Commitments', 'CommitmentOf', [97, bob.address])).toBeNull();
  });

  it('drops a ciphertext for another key silently', async () => {
    const rt = await create({ genesis });
    const lines: string[] = [];
    const rt2 = await create({ genesis, debug: (l) => lines.push(l) });
    rt.produceBlocks(1);
    rt2.produceBlocks(1);
    const r = rt2.beacon.roundAt(Math.floor(rt2.chainTimeMs() / 1000)) + 1;
    const foreign = { TimelockEncrypted: { encrypted: u8aToHex(timelockEncrypt({ round: r, plaintext: encodeScaleString('x') })), reveal_round: r } };
    expect(apply(rt2, bob, setCommitment(rt2, [foreign])).result).toBe('ok');
    rt2.produceBlocks(1, { advanceSeconds: 9 });
    expect(revealed(rt2, bob.address)).toEqual([]);
    expect(rt2.read('Commitments', 'CommitmentOf', [97, bob.address])).toBeNull();
    expect(lines.some((l) => l.includes('does not decrypt'))).toBe(true);
  });

  it('recorded-quicknet mode reveals a ciphertext for round 1000 with the real drand signature', async () => {
    const rt = await create({ genesis, beacon: { kind: 'recorded-quicknet' } });
    const pulse = rt.read('Drand', 'Pulses', [1000]) as unknown as { signature: Codec };
    expect(verifyDrandSignature(1000, hexToU8a(pulse.signature.toHex()))).toBe(true);
    expect(json(rt.read('Drand', 'LastStoredRound'))).toBe(2000);
    const ct = timelockEncrypt({ round: 1000, plaintext: encodeScaleString('v7|real/drand|sha256:ab') });
    const r = apply(rt, bob, setCommitment(rt, [{ TimelockEncrypted: { encrypted: u8aToHex(ct), reveal_round: 1000 } }]));
    expect(r.result).toBe('ok');
    rt.produceBlocks(1);
    expect(hexToU8a(revealed(rt, bob.address)[0]?.[0])).toEqual(encodeScaleString('v7|real/drand|sha256:ab'));
  });
});

describe('Drand pulses', () => {
  it('stores signed pulses up to chain time, bounded per block and in total', async () => {
    const rt = await create({ maxPulsesPerBlock: 4, maxStoredPulses: 6 });
    const [b1] = rt.produceBlocks(1);
    const first = rt.beacon.roundAt(Math.floor(NOW / 1000));
    expect(json(rt.read('Drand', 'LastStoredRound'))).toBe(first);
    const pulse = rt.read('Drand', 'Pulses', [first]) as unknown as { signature: Codec; randomness: Codec };
    expect(verifyDrandSignature(first, hexToU8a(pulse.signature.toHex()), rt.beacon.publicKey)).toBe(true);
    expect(verifyDrandSignature(first + 1, hexToU8a(pulse.signature.toHex()), rt.beacon.publicKey)).toBe(false);
    expect(blockEvents(rt, b1 as never).some((e) => e.section === 'drand' && e.method === 'NewPulse')).toBe(true);
    rt.produceBlocks(1, { advanceSeconds: 30 }); // 10 rounds due, 4 per block
    expect(json(rt.read('Drand', 'LastStoredRound'))).toBe(first + 4);
    rt.produceBlocks(2);
    expect(json(rt.read('Drand', 'LastStoredRound'))).toBe(first + 10);
    expect(json(rt.read('Drand', 'OldestStoredRound'))).toBe(first + 5);
    expect(rt.read('Drand', 'Pulses', [first + 4])).toBeNull();
    const config = rt.read('Drand', 'BeaconConfig') as unknown as { publicKey: Codec; genesisTime: Codec; period: Codec };
    expect(config.publicKey.toHex()).toBe(u8aToHex(rt.beacon.publicKey));
    expect([config.genesisTime.toJSON(), config.period.toJSON()]).toEqual([1692803367, 3]);
  });
});

describe('commit-reveal v4 weights', () => {
  it('queues a timelocked commit and applies it after the reveal epoch', async () => {
    const rt = await create({
      genesis: {
        subnets: [{ netuid: 97, tempo: 4, commitRevealWeightsEnabled: true, weightsSetRateLimit: 0 }, { netuid: 3 }],
        endowments: endowed,
        registrations: [
          { hotkey: bob.address, coldkey: alice.address },
          { hotkey: charlie.address, coldkey: alice.address },
        ],
      },
    });
    rt.produceBlocks(1);
    const round = rt.beacon.roundAt(Math.floor(rt.chainTimeMs() / 1000)) + 3;
    const payload = encodeWeightsCommitPayload({ hotkeyPublicKey: bob.publicKey, uids: [0, 1], weights: [65535, 100], versionKey: 0 });
    const commit = u8aToHex(timelockEncrypt({ round, plaintext: payload, publicKey: rt.beacon.publicKey }));
    const commitCall = (netuid: number, version: number) => tx(rt).subtensorModule?.commitTimelockedMechanismWeights?.(netuid, 0, commit, round, version) as Codec;
    expect(apply(rt, bob, commitCall(3, 4)).result).toBe('CommitRevealDisabled');
    expect(apply(rt, bob, commitCall(97, 3)).result).toBe('IncorrectCommitRevealVersion');
    const r = apply(rt, bob, commitCall(97, 4));
    expect(r.result).toBe('ok');
    expect(r.events).toContain('subtensorModule.TimelockedWeightsCommitted');
    expect(rt.read('SubtensorModule', 'Weights', [97, 0])).toBeNull();
    rt.produceBlocks(12, { advanceSeconds: 12 });
    expect(json(rt.read('SubtensorModule', 'Weights', [97, 0]))).toEqual([
      [0, 65535],
      [1, 100],
    ]);
    expect(rt.keysPaged(rt.codec.prefix(rt.codec.entry('SubtensorModule', 'TimelockedWeightCommits'), []), 10)).toEqual([]);
  });
});

describe('persistence', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'albedo-devnet-rt-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resumes after a kill with identical hashes and state, then continues', async () => {
    const dataFile = join(dir, 'chain.jsonl');
    const options: RuntimeOptions = { dataFile, genesis: { endowments: endowed } };
    const rt = await create(options);
    rt.produceBlocks(2);
    expect(apply(rt, alice, tx(rt).subtensorModule?.burnedRegister?.(97, bob.address) as Codec).result).toBe('ok');
    rt.produceBlocks(3, { advanceSeconds: 20 });
    const best = rt.best();
    const key = rt.codec.key(rt.codec.entry('SubtensorModule', 'Uids'), [97, bob.address]);
    // Simulated SIGKILL: no close(); a torn half-line is left behind by an interrupted append.
    writeFileSync(dataFile, `${readFileSync(dataFile, 'utf8')}{"t":"block","hea`);
    const resumed = await create(options);
    expect(resumed.best().hash).toBe(best.hash);
    expect(resumed.getStorage(key)).toBe(rt.getStorage(key));
    expect(resumed.getStorage(key, rt.blockByNumber(2)?.hash)).toBeNull();
    expect(resumed.chainTimeMs()).toBe(rt.chainTimeMs());
    expect(resumed.accountNonce(alice.publicKey)).toBe(1);
    const [next] = resumed.produceBlocks(1);
    expect(next?.parentHash).toBe(best.hash);
    resumed.close();
    const again = await create(options);
    expect(again.best().hash).toBe(next?.hash);
  });

  it('refuses a foreign file, a corrupt file and another genesis, naming the file', async () => {
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, '{"hello":1}\n');
    await expect(create({ dataFile: foreign })).rejects.toThrow(new RegExp(`${foreign}.*not an albedo-devnet data file`));
    const file = join(dir, 'g.jsonl');
    (await create({ dataFile: file })).produceBlocks(1);
    const err = await create({ dataFile: file, genesis: { endowments: endowed } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFileError);
    expect((err as DataFileError).code).toBe('genesis_mismatch');
    expect((err as Error).message).toContain(file);
    const lines = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, [lines[0], '{"t":"snapshot"', ...lines.slice(2)].join('\n'));
    await expect(create({ dataFile: file })).rejects.toThrow(/line 2 is not JSON/);
  });
});
