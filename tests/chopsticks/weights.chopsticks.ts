/**
 * Tier 3 (spec/chain.md §10): `Subtensor.setWeights` (§6.2) against a real node-subtensor spec-218
 * runtime under chopsticks. Spec 218 has no mechanisms and no CRv4, so the client must pick the plain
 * `setWeights` call; `setMechanismWeights` / `commitTimelockedMechanismWeights` are NOT covered here.
 *
 * Proves against real runtime logic: inclusion and `LastUpdate`, the client's rate-limit pre-check
 * (`weight_set_rate_limited`, nothing sent), the runtime's `SettingWeightsTooFast` and
 * `IncorrectWeightVersionKey` decoded through chain/extrinsics.ts, the version-key bump to the chain's
 * `WeightsVersionKey`, a dispatch error on the client path (`weight_set_rejected`), and that a set
 * succeeds again after `dev_newBlock { count: 101 }`.
 */
import type { KeyringPair } from '@polkadot/keyring/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainError } from '../../chain/client.ts';
import { ExtrinsicError, sendAndWait, signOnce } from '../../chain/extrinsics.ts';
import { burnedRegister } from '../../chain/miner-ops.ts';
import { call, storageItem } from '../../chain/pallets.ts';
import { connectSubtensor, type Subtensor, toWeightChainError } from '../../chain/subtensor.ts';
import { CHOPSTICKS_ENABLED, type Chopsticks, devKeys, NETUID, rejectionOf, startChopsticks, TAO } from './harness.ts';

/** SDK 10.3.0 convention (spec §6.2 step 3). */
const VERSION_KEY = 10_003_000;


describe.skipIf(!CHOPSTICKS_ENABLED)('chopsticks spec 218: set_weights, rate limit, version key', () => {
  let node: Chopsticks;
  let chain: Subtensor;
  let validator: KeyringPair;
  let validatorUid: number;
  let minerUid: number;
  let registrationBlock: number;
  let lastSet: number;

  /** The `setWeights` extrinsic `hash` as included in block `n`: its decoded arguments. */
  async function includedArgs(n: number, extrinsicHash: string): Promise<{ section: string; method: string; args: unknown[] }> {
    const block = await chain.api.rpc.chain.getBlock(await chain.api.rpc.chain.getBlockHash(n));
    const xt = block.block.extrinsics.find((x) => x.hash.toHex() === extrinsicHash);
    if (!xt) throw new Error(`extrinsic ${extrinsicHash} not in block ${n}`);
    return { section: xt.method.section, method: xt.method.method, args: xt.method.args.map((a) => a.toJSON()) };
  }

  /** The same call as the client would send, signed and sent directly (no client pre-checks). */
  async function rawSetWeights(uids: number[], weights: number[], versionKey: number): Promise<ExtrinsicError> {
    const signed = await signOnce(call(chain.api, 'subtensorModule', 'setWeights')(NETUID, uids, weights, versionKey), validator);
    const error = await rejectionOf(sendAndWait(chain.api, signed, { waitFor: 'inBlock' }));
    expect(error).toBeInstanceOf(ExtrinsicError);
    return error as ExtrinsicError;
  }

  beforeAll(async () => {
    node = await startChopsticks();
    console.info(`[chopsticks] started in ${node.startupMs} ms on ${node.endpoint}${node.block1Rebuilt ? " (its block #1 had failed; rebuilt)" : ""}`);
    const key = await devKeys();
    const coldkey = key('//Alice');
    validator = key('//Alice//validator');
    chain = await connectSubtensor({ network: node.endpoint, signers: [validator] });
    await node.endow(coldkey.address, 1_000n * TAO);
    const v = await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: validator.address });
    const m = await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: key('//Alice//miner').address });
    validatorUid = v.uid;
    minerUid = m.uid;
    registrationBlock = v.included?.blockNumber ?? -1;
  });

  afterAll(async () => {
    await chain?.close();
    await node?.stop();
  });

  it('spec 218 writes LastUpdate at registration: client and runtime both rate-limit a fresh validator', async () => {
    // Not a weight set, but `lastWeightsSetBlock` (LastUpdate) reports the registration block.
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(registrationBlock);
    const early = await rejectionOf(chain.setWeights({ netuid: NETUID, uids: [validatorUid], weights: [65535], versionKey: VERSION_KEY, signer: validator.address }));
    expect(early).toBeInstanceOf(ChainError);
    expect((early as ChainError).code).toBe('weight_set_rate_limited');
    expect((early as ChainError).extrinsicHash).toBeNull(); // the client's pre-check: nothing sent
    // The runtime agrees.
    const runtime = await rawSetWeights([validatorUid], [65535], VERSION_KEY);
    expect(runtime.code).toBe('dispatch_failed');
    expect(runtime.moduleError).toMatchObject({ section: 'subtensorModule', name: 'SettingWeightsTooFast' });
  });

  it("the runtime's boundary: SettingWeightsTooFast in block LastUpdate + 99, accepted in LastUpdate + 100 (the client waits 2 blocks longer)", async () => {
    // Skip block numbers in one block (`unsafeBlockHeight`) instead of building ~100 blocks (~60 s):
    // the runtime's limit is plain block-number arithmetic. The count-101 path is used further down.
    await node.newBlocks(1, { unsafeBlockHeight: registrationBlock + 98 });
    const tooFast = await rawSetWeights([validatorUid], [65535], VERSION_KEY); // built into block L + 99
    expect(tooFast.moduleError?.name).toBe('SettingWeightsTooFast');
    expect((await chain.bestBlock()).number).toBe(registrationBlock + 99);
    // spec §6.2 step 2 (`best − last > limit`) still refuses here, though the runtime would accept now.
    const client = await rejectionOf(chain.setWeights({ netuid: NETUID, uids: [validatorUid], weights: [65535], versionKey: VERSION_KEY, signer: validator.address }));
    expect((client as ChainError).code).toBe('weight_set_rate_limited');
    const signed = await signOnce(call(chain.api, 'subtensorModule', 'setWeights')(NETUID, [validatorUid], [65535], VERSION_KEY), validator);
    const accepted = await sendAndWait(chain.api, signed, { waitFor: 'inBlock' });
    expect(accepted.blockNumber).toBe(registrationBlock + 100);
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(registrationBlock + 100);
  });

  it('after the rate limit, setWeights is included with the plain setWeights call and updates LastUpdate', async () => {
    const best = (await chain.bestBlock()).number;
    await node.newBlocks(1, { unsafeBlockHeight: best + 101 });
    const result = await chain.setWeights({ netuid: NETUID, uids: [validatorUid], weights: [65535], versionKey: VERSION_KEY, signer: validator.address });
    expect(result.includedInBlock).toBe(best + 102);
    expect(result.extrinsicHash).toMatch(/^0x[0-9a-f]{64}$/);
    lastSet = result.includedInBlock;
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(lastSet);
    expect(await includedArgs(result.includedInBlock, result.extrinsicHash)).toEqual({ section: 'subtensorModule', method: 'setWeights', args: [NETUID, [validatorUid], [65535], VERSION_KEY] });
    expect((await storageItem(chain.api, 'subtensorModule', 'weights')(NETUID, validatorUid)).toJSON()).toEqual([[validatorUid, 65535]]);
  });

  it('a second immediate set: weight_set_rate_limited from the client; SettingWeightsTooFast from the runtime', async () => {
    const again = await rejectionOf(chain.setWeights({ netuid: NETUID, uids: [validatorUid], weights: [65535], versionKey: VERSION_KEY, signer: validator.address }));
    expect((again as ChainError).code).toBe('weight_set_rate_limited');
    expect((again as ChainError).extrinsicHash).toBeNull();
    expect(again.message).toMatch(new RegExp(`last weight set at block ${lastSet}, limit 100 blocks`));

    const runtime = await rawSetWeights([validatorUid], [65535], VERSION_KEY);
    expect(runtime.code).toBe('dispatch_failed');
    expect(runtime.moduleError?.name).toBe('SettingWeightsTooFast');
    expect(runtime.message).toMatch(/^subtensorModule\.SettingWeightsTooFast: /);
    // The client maps the runtime's rate limit to the same CHAIN fault (spec §6.2 step 6).
    const mapped = toWeightChainError(runtime, null);
    expect(mapped.code).toBe('weight_set_rate_limited');
    expect(mapped.extrinsicHash).toBe(runtime.extrinsicHash);
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(lastSet);
  });

  it('after dev_newBlock { count: 101 }: a wrong version key is IncorrectWeightVersionKey, a bad uid is weight_set_rejected, then the set succeeds again', async () => {
    const started = Date.now();
    await node.newBlocks(101);
    console.info(`[chopsticks] dev_newBlock { count: 101 } took ${Date.now() - started} ms`);
    expect((await chain.bestBlock()).number - lastSet).toBeGreaterThan(100);

    // The subnet owner raises WeightsVersionKey (written directly; the sudo path is not under test).
    await node.setStorage({ SubtensorModule: { WeightsVersionKey: [[[NETUID], 20_000_000]] } });
    expect((await chain.weightParams(NETUID)).weightsVersionKey).toBe(20_000_000);
    const wrongKey = await rawSetWeights([validatorUid], [65535], VERSION_KEY);
    expect(wrongKey.code).toBe('dispatch_failed');
    expect(wrongKey.moduleError).toMatchObject({ section: 'subtensorModule', name: 'IncorrectWeightVersionKey' });
    expect(toWeightChainError(wrongKey, null).code).toBe('weight_set_rejected');

    // A dispatch error on the client path: uid 999 does not exist.
    const badUid = await rejectionOf(chain.setWeights({ netuid: NETUID, uids: [999], weights: [65535], versionKey: VERSION_KEY, signer: validator.address }));
    expect(badUid).toBeInstanceOf(ChainError);
    expect((badUid as ChainError).code).toBe('weight_set_rejected');
    expect(badUid.message).toMatch(/^subtensorModule\.UidVecContainInvalidOne: /);
    expect((badUid as ChainError).extrinsicHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(lastSet);

    // Succeeds again; the client lifts our key to the chain's WeightsVersionKey. Burn uid 0 first, then
    // the miner: the epoch inside those 101 blocks gave every neuron a validator permit.
    const ok = await chain.setWeights({ netuid: NETUID, uids: [0, minerUid], weights: [65535, 32768], versionKey: VERSION_KEY, signer: validator.address });
    expect(await includedArgs(ok.includedInBlock, ok.extrinsicHash)).toEqual({ section: 'subtensorModule', method: 'setWeights', args: [NETUID, [0, minerUid], [65535, 32768], 20_000_000] });
    expect(await chain.lastWeightsSetBlock(NETUID, validator.address)).toBe(ok.includedInBlock);
    expect((await storageItem(chain.api, 'subtensorModule', 'weights')(NETUID, validatorUid)).toJSON()).toEqual([
      [0, 65535],
      [minerUid, 32768],
    ]);
  });
});
