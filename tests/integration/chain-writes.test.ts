/**
 * Chain writes (issue #4 "Writes") against the in-process dev chain with blocks produced on demand, so
 * each test decides exactly when an extrinsic is included and finalized: a lost answer never leads to
 * a second submission, weights choose their extrinsic from chain state (plain or CRv4 commit), and
 * chain refusals become the spec's CHAIN fault codes.
 */
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChainError } from '../../chain/client.ts';
import { type DevnetNode, startDevnetNode } from '../../chain/devnet/rpc-node.ts';
import { burnedRegister, commitReveal, MinerOpError, storedCommitment } from '../../chain/miner-ops.ts';
import { storageItem } from '../../chain/pallets.ts';
import { connectSubtensor, type Subtensor } from '../../chain/subtensor.ts';

const NETUID = 97;
const TAO = 1_000_000_000n;
let keys: { coldkey: KeyringPair; validator: KeyringPair; miner: KeyringPair; stranger: KeyringPair };

beforeAll(async () => {
  await cryptoWaitReady();
  const k = new Keyring({ type: 'sr25519', ss58Format: 42 });
  keys = { coldkey: k.addFromUri('//Writes//cold'), validator: k.addFromUri('//Writes//validator'), miner: k.addFromUri('//Writes//miner'), stranger: k.addFromUri('//Writes//stranger') };
});

let node: DevnetNode | undefined;
let chain: Subtensor | undefined;
afterEach(async () => {
  await chain?.close();
  await node?.close();
  chain = undefined;
  node = undefined;
});

async function start(subnet: Record<string, unknown> = {}, finalityLag = 3): Promise<{ node: DevnetNode; chain: Subtensor }> {
  node = await startDevnetNode({
    blockTimeMs: 0,
    finalityLag,
    genesis: {
      subnets: [{ netuid: NETUID, weightsSetRateLimit: 2, ...subnet }],
      endowments: { [keys.coldkey.address]: 100n * TAO },
      registrations: [
        { hotkey: keys.validator.address, coldkey: keys.coldkey.address, netuid: NETUID },
        { hotkey: keys.miner.address, coldkey: keys.coldkey.address, netuid: NETUID },
      ],
    },
    log: () => {},
  });
  chain = await connectSubtensor({ network: node.url, signers: [keys.validator], inclusionTimeoutMs: 5_000 });
  return { node, chain };
}

/** Produces one block as soon as `count` extrinsics wait in the pool. */
async function includeWhenPending(n: DevnetNode, count = 1): Promise<void> {
  await n.runtime.whenPending(count);
  n.runtime.produceBlocks(1);
}

describe('retry safety: a lost answer is resolved from chain state, never by sending again', () => {
  it('a timelocked commit that landed but was not finalized in time is reported committed, once', async () => {
    const { node: n, chain: c } = await start({}, 3);
    const included = includeWhenPending(n);
    const result = await commitReveal(c, { netuid: NETUID, hotkey: keys.miner, repo: 'miner/albedo-qwen3.6-35b-x', digest: 'a'.repeat(40), wait: { timeoutMs: 1_500 } });
    await included;
    const stored = await storedCommitment(c, NETUID, keys.miner.address);
    expect(result.blockNumber).toBe(stored?.block);
    expect(stored?.fields).toHaveLength(1);
    expect(n.runtime.pendingExtrinsics()).toEqual([]);
    expect(n.runtime.accountNonce(keys.miner.publicKey)).toBe(1);
  });

  it('a registration that landed but timed out returns the uid and burns once', async () => {
    const { node: n, chain: c } = await start({}, 3);
    const fresh = new Keyring({ type: 'sr25519' }).addFromUri('//Writes//fresh').address;
    const before = await c.freeBalance(keys.coldkey.address);
    const included = includeWhenPending(n);
    const r = await burnedRegister(c, { netuid: NETUID, coldkey: keys.coldkey, hotkey: fresh, wait: { timeoutMs: 1_500 } });
    await included;
    expect(r).toMatchObject({ uid: 2, alreadyRegistered: false, included: null });
    expect(before - (await c.freeBalance(keys.coldkey.address))).toBe(TAO);
    expect(n.runtime.accountNonce(keys.coldkey.publicKey)).toBe(1);
  });

  it('a commit that never landed is a clean timeout error, not a success', async () => {
    const { chain: c } = await start({}, 0);
    await expect(commitReveal(c, { netuid: NETUID, hotkey: keys.miner, repo: 'miner/albedo-qwen3.6-35b-x', digest: 'b'.repeat(40), wait: { timeoutMs: 800 } })).rejects.toMatchObject({
      name: 'MinerOpError',
      code: 'timeout',
    });
  });

  it('an unregistered hotkey is refused before anything is signed; a poor coldkey before anything is burned', async () => {
    const { chain: c } = await start({}, 0);
    await expect(commitReveal(c, { netuid: NETUID, hotkey: keys.stranger, repo: 'x/albedo-qwen3.6-35b-y', digest: 'c'.repeat(40) })).rejects.toThrow(
      `hotkey ${keys.stranger.address} is not registered on netuid ${NETUID} (run albedo register)`,
    );
    await expect(burnedRegister(c, { netuid: NETUID, coldkey: keys.stranger, hotkey: keys.stranger.address })).rejects.toThrow(/^insufficient balance: have 0 TAO, need 1 TAO$/);
    await expect(commitReveal(c, { netuid: NETUID, hotkey: keys.miner, repo: 'Bad Repo', digest: 'main' })).rejects.toBeInstanceOf(MinerOpError);
  });
});

describe('weights', () => {
  const request = () => ({ netuid: NETUID, uids: [0, 1], weights: [65535, 32768], versionKey: 10_003_000, signer: keys.validator.address });
  const stored = async (c: Subtensor, uid: number) =>
    ((await storageItem(c.api, 'subtensorModule', 'weights')(NETUID, uid)) as unknown as Array<[{ toNumber(): number }, { toNumber(): number }]>).map(([u, w]) => [u.toNumber(), w.toNumber()]);

  it('sets mechanism weights when commit-reveal is off, then refuses inside the rate limit without sending', async () => {
    const { node: n, chain: c } = await start({}, 0);
    n.runtime.produceBlocks(3);
    const included = includeWhenPending(n);
    const result = await c.setWeights(request());
    await included;
    expect(result.includedInBlock).toBe(n.runtime.best().number);
    expect(await stored(c, 0)).toEqual([
      [0, 65535],
      [1, 32768],
    ]);
    expect(await c.lastWeightsSetBlock(NETUID, keys.validator.address)).toBe(result.includedInBlock);
    const again = c.setWeights(request());
    await expect(again).rejects.toMatchObject({ code: 'weight_set_rate_limited' });
    expect(n.runtime.pendingExtrinsics()).toEqual([]);
    await expect(c.setWeights({ ...request(), signer: keys.miner.address })).rejects.toMatchObject({ code: 'weight_set_exception', message: expect.stringMatching(/no signing key/) });
  });

  it('an unregistered validator is weight_set_rejected', async () => {
    const { chain: c } = await start({}, 0);
    c.addSigner(keys.stranger);
    await expect(c.setWeights({ ...request(), signer: keys.stranger.address })).rejects.toEqual(expect.any(ChainError));
    await expect(c.setWeights({ ...request(), signer: keys.stranger.address })).rejects.toMatchObject({ code: 'weight_set_rejected' });
  });

  it('with commit-reveal on, commits a CRv4 timelocked payload that the chain decrypts and applies at the reveal round', async () => {
    const { node: n, chain: c } = await start({ commitRevealWeightsEnabled: true, tempo: 10, revealPeriodEpochs: 1 }, 0);
    n.runtime.produceBlocks(3);
    const included = includeWhenPending(n);
    await c.setWeights(request());
    await included;
    expect(await stored(c, 0)).toEqual([]); // sealed until its round
    for (let i = 0; i < 40 && (await stored(c, 0)).length === 0; i++) n.runtime.produceBlocks(1, { advanceSeconds: 12 });
    expect(await stored(c, 0)).toEqual([
      [0, 65535],
      [1, 32768],
    ]);
  });
});
