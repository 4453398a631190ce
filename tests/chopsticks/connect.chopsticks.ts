/**
 * Tier 3 (spec/chain.md §10): connecting the production client to a real node-subtensor spec-218
 * runtime under chopsticks — runtime version, the signed-extension set (§8, old names
 * `SubtensorSignedExtension` / `CommitmentsSignedExtension`), that a signature built with our extension
 * map is accepted by the runtime while a wrong map is refused, finality, and the runtime's limits (what
 * this tier can NOT cover). Run with `npm run test:chopsticks`.
 */
import { ApiPromise, WsProvider } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Codec } from '@polkadot/types-codec/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtrinsicError, sendAndWait, signOnce } from '../../chain/extrinsics.ts';
import { call, hasCall, hasStorageItem } from '../../chain/pallets.ts';
import { SUBTENSOR_SIGNED_EXTENSIONS, unknownSignedExtensions } from '../../chain/signed-extensions.ts';
import { connectSubtensor, type Subtensor } from '../../chain/subtensor.ts';
import { CHOPSTICKS_ENABLED, type Chopsticks, devKeys, NETUID, startChopsticks, TAO } from './harness.ts';

describe.skipIf(!CHOPSTICKS_ENABLED)('chopsticks spec 218: connect and signed extensions', () => {
  let node: Chopsticks;
  let chain: Subtensor;
  let alice: KeyringPair;

  beforeAll(async () => {
    node = await startChopsticks();
    console.info(`[chopsticks] started in ${node.startupMs} ms on ${node.endpoint}${node.block1Rebuilt ? " (its block #1 had failed; rebuilt)" : ""}`);
    chain = await connectSubtensor({ network: node.endpoint });
    alice = (await devKeys())('//Alice');
    await node.endow(alice.address, 1_000n * TAO);
  });

  afterAll(async () => {
    await chain?.close();
    await node?.stop();
  });

  it('runs node-subtensor spec 218 and the client accepts its signed-extension set', () => {
    const { api } = chain;
    expect(api.runtimeVersion.specName.toString()).toBe('node-subtensor');
    expect(api.runtimeVersion.specVersion.toNumber()).toBe(218);
    expect(api.runtimeVersion.transactionVersion.toNumber()).toBe(1);
    expect(api.registry.chainSS58).toBe(42);
    // The pre-rename extension ids of old runtimes, both zero-sized in our map.
    expect(api.registry.signedExtensions).toEqual([
      'CheckNonZeroSender',
      'CheckSpecVersion',
      'CheckTxVersion',
      'CheckGenesis',
      'CheckMortality',
      'CheckNonce',
      'CheckWeight',
      'ChargeTransactionPayment',
      'SubtensorSignedExtension',
      'CommitmentsSignedExtension',
      'CheckMetadataHash',
    ]);
    expect(unknownSignedExtensions(api.registry.signedExtensions)).toEqual([]);
  });

  it('a transaction signed with our extension map is accepted, finalized, and emits ExtrinsicSuccess', async () => {
    const statuses: string[] = [];
    const signed = await signOnce(call(chain.api, 'system', 'remark')('0x616c6265646f'), alice);
    // Era 128 (spec §6.2 step 6) and CheckMetadataHash mode 0, as on mainnet.
    expect(signed.era.isMortalEra).toBe(true);
    expect(signed.era.asMortalEra.period.toNumber()).toBe(128);
    const included = await sendAndWait(chain.api, signed, { waitFor: 'finalized', onStatus: (s) => statuses.push(s.split(' ')[0] ?? s) });
    expect(included.finalized).toBe(true);
    expect(statuses).toEqual(['ready', 'inBlock', 'finalized']);
    expect(included.events.map((e) => `${e.section}.${e.method}`)).toContain('system.ExtrinsicSuccess');
    expect(included.events.map((e) => `${e.section}.${e.method}`)).toContain('transactionPayment.TransactionFeePaid');
    const best = await chain.bestBlock();
    expect(best.number).toBe(included.blockNumber);
    // Instant mode finalizes every block it builds.
    expect((await chain.finalizedBlock()).number).toBe(best.number);
    expect(await chain.blockHash(included.blockNumber)).toBe(included.blockHash.toLowerCase());
  });

  it('negative control: a wrong layout for SubtensorSignedExtension makes the runtime refuse the signature (spec §8)', async () => {
    // Same call and signer, but the map claims 4 bytes of additional signed data that the runtime does
    // not have: the signed payload differs, so the real runtime's signature check must fail.
    const wrong = await ApiPromise.create({
      provider: new WsProvider(node.endpoint),
      signedExtensions: { ...SUBTENSOR_SIGNED_EXTENSIONS, SubtensorSignedExtension: { extrinsic: {}, payload: { bogus: 'u32' } } },
      noInitWarn: true,
    });
    try {
      const signed = await signOnce(call(wrong, 'system', 'remark')('0x6261642d657874'), alice);
      const error = await sendAndWait(wrong, signed, { waitFor: 'inBlock', timeoutMs: 60_000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ExtrinsicError);
      expect((error as ExtrinsicError).code).toBe('invalid');
      // chopsticks words pool errors as JSON (`1010: {"invalid":{"badProof":null}}`); a node says "bad signature".
      expect((error as ExtrinsicError).message).toMatch(/badProof|bad signature/i);
    } finally {
      await wrong.disconnect();
    }
  });

  it('reads subnet parameters through the metadata (netuid 1 of the raonet genesis)', async () => {
    expect(await chain.weightParams(NETUID)).toEqual({ tempo: 100, weightsSetRateLimit: 100, weightsVersionKey: 0, commitRevealEnabled: false, revealPeriodEpochs: 1 });
    expect(await chain.burnCost(NETUID)).toBe(1n * TAO);
    expect(await chain.freeBalance(alice.address)).toBeGreaterThan(999n * TAO);
  });

  it('documents what spec 218 lacks: no timelock, RevealedCommitments, Drand, mechanisms or CRv4', async () => {
    const { api } = chain;
    expect(hasCall(api, 'subtensorModule', 'setWeights')).toBe(true);
    expect(hasCall(api, 'subtensorModule', 'burnedRegister')).toBe(true);
    expect(hasCall(api, 'commitments', 'setCommitment')).toBe(true);
    expect(hasCall(api, 'subtensorModule', 'setMechanismWeights')).toBe(false);
    expect(hasCall(api, 'subtensorModule', 'commitTimelockedMechanismWeights')).toBe(false);
    expect(hasStorageItem(api, 'commitments', 'revealedCommitments')).toBe(false);
    expect(hasStorageItem(api, 'commitments', 'commitmentOf')).toBe(true);
    expect(api.query.drand).toBeUndefined();
    // Commitment `Data` variants: Raw0..Raw128 and the hashes only (no TimelockEncrypted / BigRaw).
    const info = api.registry.createType('PalletCommitmentsCommitmentInfo', { fields: [{ None: null }] }) as unknown as { fields: Array<Codec & { defKeys: string[] }> };
    const variants = info.fields[0]?.defKeys ?? [];
    expect(variants).toContain('Raw128');
    expect(variants).not.toContain('TimelockEncrypted');
    expect(variants).not.toContain('BigRaw');
    await expect(chain.revealedCommitments(NETUID)).rejects.toThrow('this runtime has no storage item commitments.revealedCommitments');
  });
});
