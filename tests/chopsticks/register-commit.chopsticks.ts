/**
 * Tier 3 (spec/chain.md §10): the miner writes and the chain reader against a real node-subtensor
 * spec-218 runtime under chopsticks.
 *
 * - `burnedRegister` (§5): uid assigned, `NeuronRegistered`, burn taken from the coldkey; again ⇒
 *   `already registered`; the runtime's own errors (`HotKeyAlreadyRegisteredInSubNet`,
 *   `NotEnoughBalanceToStake`) decode through `chain/extrinsics.ts`.
 * - `commitReveal({ raw: true })` (§4 raw fallback): a `Raw<n>` field in `CommitmentOf`; the runtime's
 *   commitment rate limit and `AccountNotAllowedCommit`.
 * - The chain reader with `readRawCommitments: true` turns it into a submission row in real Postgres.
 *
 * Spec 218 has no `RevealedCommitments`, timelock or drand: the timelocked path is NOT covered here.
 */
import type { KeyringPair } from '@polkadot/keyring/types';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ExtrinsicError, sendAndWait, signOnce } from '../../chain/extrinsics.ts';
import { burnedRegister, commitReveal, MinerOpError, storedCommitment } from '../../chain/miner-ops.ts';
import { call, storageItem } from '../../chain/pallets.ts';
import { ChainReader } from '../../chain/reader.ts';
import { subtensorReaderSource } from '../../chain/reader-source.ts';
import { connectSubtensor, type Subtensor } from '../../chain/subtensor.ts';
import { inTx } from '../../persistence/db.ts';
import { insertSubmission, type NewReveal } from '../../persistence/submissions.ts';
import { freshDatabase, testServers } from '../support/pg.ts';
import { CHOPSTICKS_ENABLED, type Chopsticks, devKeys, NETUID, rejectionOf, startChopsticks, TAO } from './harness.ts';

const REPO = 'example/albedo-qwen3.6-35b-demo';
const DIGEST = `sha256:${'0'.repeat(64)}`;


describe.skipIf(!CHOPSTICKS_ENABLED)('chopsticks spec 218: burned_register, Raw set_commitment, chain reader', () => {
  let node: Chopsticks;
  let chain: Subtensor;
  let key: (uri: string) => KeyringPair;
  let coldkey: KeyringPair;
  let hotkey: KeyringPair;
  let registration: { uid: number; block: number };
  let commit: { block: number; payload: string };

  beforeAll(async () => {
    node = await startChopsticks();
    console.info(`[chopsticks] started in ${node.startupMs} ms on ${node.endpoint}${node.block1Rebuilt ? " (its block #1 had failed; rebuilt)" : ""}`);
    chain = await connectSubtensor({ network: node.endpoint });
    key = await devKeys();
    coldkey = key('//Alice');
    hotkey = key('//Alice//miner1'); // never funded: registration and commitments cost it nothing
    await node.endow(coldkey.address, 1_000n * TAO);
  });

  afterAll(async () => {
    await chain?.close();
    await node?.stop();
  });

  it('burnedRegister assigns a uid, emits NeuronRegistered, burns Burn(netuid), and is finalized', async () => {
    const before = await chain.freeBalance(coldkey.address);
    const quotes: Array<{ costRao: bigint; balanceRao: bigint }> = [];
    const result = await burnedRegister(chain, {
      netuid: NETUID,
      coldkey,
      hotkey: hotkey.address,
      confirm: async (q) => {
        quotes.push(q);
        return true;
      },
    });
    expect(result.alreadyRegistered).toBe(false);
    expect(result.costRao).toBe(1n * TAO);
    expect(quotes).toEqual([{ costRao: 1n * TAO, balanceRao: before }]);
    expect(result.included?.finalized).toBe(true);
    const events = result.included?.events.map((e) => `${e.section}.${e.method}`) ?? [];
    expect(events).toContain('subtensorModule.NeuronRegistered');
    expect(events).toContain('system.ExtrinsicSuccess');
    const block = result.included?.blockNumber ?? -1;
    registration = { uid: result.uid, block };
    expect(await chain.uidOf(NETUID, hotkey.address)).toBe(result.uid);
    expect(await chain.hotkeyOf(NETUID, result.uid)).toBe(hotkey.address);
    expect(await chain.ownerOf(hotkey.address)).toBe(coldkey.address);
    expect(await chain.neurons(NETUID)).toContainEqual({ uid: result.uid, hotkey: hotkey.address, registrationBlock: block });
    // The burn left the coldkey (burned_register pays no fee on spec 218).
    expect(before - (await chain.freeBalance(coldkey.address))).toBe(1n * TAO);
  });

  it('registering again: the client answers "already registered"; the runtime says HotKeyAlreadyRegisteredInSubNet', async () => {
    const again = await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: hotkey.address });
    expect(again).toEqual({ uid: registration.uid, alreadyRegistered: true, costRao: null, included: null });
    // Bypass the client's check: the same call straight to the runtime.
    const signed = await signOnce(call(chain.api, 'subtensorModule', 'burnedRegister')(NETUID, hotkey.address), coldkey);
    const error = await rejectionOf(sendAndWait(chain.api, signed, { waitFor: 'finalized' }));
    expect(error).toBeInstanceOf(ExtrinsicError);
    expect((error as ExtrinsicError).code).toBe('dispatch_failed');
    expect((error as ExtrinsicError).moduleError?.section).toBe('subtensorModule');
    expect((error as ExtrinsicError).moduleError?.name).toBe('HotKeyAlreadyRegisteredInSubNet');
  });

  it('an unfunded coldkey: insufficient_balance before sending; underfunded, the runtime says NotEnoughBalanceToStake', async () => {
    const broke = key('//Broke');
    const error = await rejectionOf(burnedRegister(chain, { netuid: NETUID, coldkey: broke, hotkey: key('//Broke//hot').address }));
    expect(error).toBeInstanceOf(MinerOpError);
    expect((error as MinerOpError).code).toBe('insufficient_balance');
    expect(error.message).toBe('insufficient balance: have 0 TAO, need 1 TAO');

    const poor = key('//Poor');
    await node.endow(poor.address, TAO / 2n);
    const signed = await signOnce(call(chain.api, 'subtensorModule', 'burnedRegister')(NETUID, key('//Poor//hot').address), poor);
    const dispatch = await rejectionOf(sendAndWait(chain.api, signed, { waitFor: 'finalized' }));
    expect((dispatch as ExtrinsicError).code).toBe('dispatch_failed');
    expect((dispatch as ExtrinsicError).moduleError?.name).toBe('NotEnoughBalanceToStake');
    expect(dispatch.message).toMatch(/^subtensorModule\.NotEnoughBalanceToStake: /);
    expect(await chain.uidOf(NETUID, key('//Poor//hot').address)).toBeNull();
  });

  it('commitReveal({ raw: true }) stores the v7 payload as a Raw field of CommitmentOf', async () => {
    const result = await commitReveal(chain, { netuid: NETUID, hotkey, repo: REPO, digest: DIGEST, raw: true });
    const payload = `v7|${REPO}|${DIGEST}`;
    expect(result.payload).toBe(payload);
    expect(result.revealRound).toBeNull();
    expect(result.blockNumber).toBeGreaterThan(registration.block);
    commit = { block: result.blockNumber, payload };

    const value = (await storageItem(chain.api, 'commitments', 'commitmentOf')(NETUID, hotkey.address)) as unknown as {
      isSome: boolean;
      unwrap(): { block: { toNumber(): number }; deposit: { toBigInt(): bigint }; info: { fields: Array<{ type: string; value: { toU8a(bare: boolean): Uint8Array } }> } };
    };
    expect(value.isSome).toBe(true);
    const reg = value.unwrap();
    expect(reg.block.toNumber()).toBe(result.blockNumber);
    expect(reg.info.fields).toHaveLength(1);
    const field = reg.info.fields[0]!;
    // Named by byte count (spec §4), plain UTF-8, no SCALE prefix.
    expect(field.type).toBe(`Raw${Buffer.byteLength(payload)}`);
    expect(Buffer.from(field.value.toU8a(true)).toString('utf8')).toBe(payload);
    const stored = await storedCommitment(chain, NETUID, hotkey.address);
    expect(stored?.block).toBe(result.blockNumber);
    expect(stored?.fields).toEqual([{ revealRound: null, encrypted: null }]);
    expect(stored?.raw.map((bytes) => Buffer.from(bytes).toString('utf8'))).toEqual([payload]);
  });

  it('the runtime rate-limits commitments and refuses unregistered hotkeys', async () => {
    const tooFast = await rejectionOf(commitReveal(chain, { netuid: NETUID, hotkey, repo: REPO, digest: `sha256:${'1'.repeat(64)}`, raw: true }));
    expect(tooFast).toBeInstanceOf(MinerOpError);
    expect((tooFast as MinerOpError).code).toBe('dispatch_failed');
    expect(tooFast.message).toMatch(/^commitments\.CommitmentSetRateLimitExceeded: /);

    const stranger = key('//Stranger');
    const refused = await rejectionOf(commitReveal(chain, { netuid: NETUID, hotkey: stranger, repo: REPO, digest: DIGEST, raw: true }));
    expect((refused as MinerOpError).code).toBe('not_registered');
    const signed = await signOnce(call(chain.api, 'commitments', 'setCommitment')(NETUID, { fields: [{ Raw3: '0x616263' }] }), stranger);
    const dispatch = await rejectionOf(sendAndWait(chain.api, signed, { waitFor: 'finalized' }));
    expect((dispatch as ExtrinsicError).moduleError).toMatchObject({ section: 'commitments', name: 'AccountNotAllowedCommit' });
  });

  it('the production reader source runs on spec 218 (no RevealedCommitments): it needs CHAIN_READ_RAW_COMMITMENTS', () => {
    const source = subtensorReaderSource(chain, NETUID);
    expect(source.prefixes.revealed).toBeNull();
  });

  it('the chain reader (readRawCommitments) turns the Raw commitment into a submission row in Postgres', async () => {
    // The reader reads at best − 3 (CHAIN_SCAN_LAG_BLOCKS): build blocks until the commit is old enough.
    await node.newBlocks(3);
    const expectedHash = await chain.blockHash(commit.block);
    expect(expectedHash).toMatch(/^0x[0-9a-f]{64}$/);
    const servers = testServers();
    expect(servers.length).toBeGreaterThan(0);
    for (const server of servers) {
      const t = await freshDatabase(server);
      const reader = new ChainReader({
        db: t.db,
        source: subtensorReaderSource(chain, NETUID),
        netuid: NETUID,
        readRawCommitments: true,
        ingest: (r: NewReveal) => inTx(t.db, async (tx) => ({ created: (await insertSubmission(tx, r)).created })),
        onError: (e, context) => {
          throw new Error(`${context}: ${e.message}`);
        },
      });
      try {
        const first = await reader.poll();
        expect(first.atBlock).toBe((await chain.bestBlock()).number - 3);
        expect(first.ingested).toBe(1);
        expect(first.ignored).toBe(0);
        const { rows: subs } = await t.db.query<{ hotkey: string; uid: number; model_uri: string; commit_hash: string; block_number: string; netuid: number }>(
          'SELECT hotkey, uid, model_uri, commit_hash, block_number::text, netuid FROM model_submissions',
        );
        expect(subs).toEqual([{ hotkey: hotkey.address, uid: registration.uid, model_uri: `${REPO}@${DIGEST}`, commit_hash: DIGEST, block_number: String(commit.block), netuid: NETUID }]);
        const { rows: commits } = await t.db.query<{ block_hash: string; uid: number; submission_id: string | null }>('SELECT block_hash, uid, submission_id FROM chain_commits');
        expect(commits).toHaveLength(1);
        expect(commits[0]).toMatchObject({ block_hash: expectedHash, uid: registration.uid });
        expect(commits[0]?.submission_id).not.toBeNull();
        const { rows: miners } = await t.db.query<{ hotkey: string; coldkey: string; uid: number; registration_block: string }>('SELECT hotkey, coldkey, uid, registration_block::text FROM miners');
        expect(miners).toEqual([{ hotkey: hotkey.address, coldkey: coldkey.address, uid: registration.uid, registration_block: String(registration.block) }]);

        // Idempotent: new blocks, nothing new on chain ⇒ nothing ingested again.
        await node.newBlocks(1);
        const second = await reader.poll();
        expect(second.ingested).toBe(0);
        expect(Number((await t.db.query<{ n: string }>('SELECT count(*)::text AS n FROM model_submissions')).rows[0]?.n)).toBe(1);
      } finally {
        reader.stop();
        await t.drop();
      }
    }
    console.info(`[chopsticks] reader checked on Postgres: ${servers.map((s) => s.name).join(', ')}`);
    // Provided by tests/support/global-setup.ts: the embedded server always, the machine's PG 15 when reachable.
    expect(inject('embeddedPgUrl')).toMatch(/^postgres/);
  });
});
