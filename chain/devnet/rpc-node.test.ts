import { ApiPromise, WsProvider } from '@polkadot/api';
import type { QueryableStorageEntry, SubmittableExtrinsic } from '@polkadot/api/types';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Codec } from '@polkadot/types/types';
import { hexToU8a, u8aToHex } from '@polkadot/util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SUBTENSOR_SIGNED_EXTENSIONS } from '../signed-extensions.ts';
import { encodeScaleString, timelockEncrypt } from '../timelock.ts';
import { DevnetAdmin, DevnetAdminError, RawWsSender } from './admin.ts';
import { DEVNET_CHAIN_NAME, DEVNET_NODE_NAME, RAO_PER_TAO } from './genesis.ts';
import { type DevnetNode, type DevnetNodeOptions, startDevnetNode } from './rpc-node.ts';
import { devKey } from './runtime-test-kit.ts';

const alice = devKey('//Alice');
const bob = devKey('//Bob');
const charlie = devKey('//Charlie');
const dave = devKey('//Dave');
const eve = devKey('//Eve');
const ZERO_ACCOUNT = '5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM';

const logs: string[] = [];
const baseOptions: DevnetNodeOptions = {
  log: (line) => logs.push(line),
  debug: () => undefined,
  genesis: {
    subnets: [{ netuid: 97, tempo: 10, weightsSetRateLimit: 5, weightsVersionKey: 10n }],
    endowments: { [alice.address]: 1000n * RAO_PER_TAO, [dave.address]: RAO_PER_TAO / 2n },
    registrations: [
      { hotkey: bob.address, coldkey: alice.address },
      { hotkey: charlie.address, coldkey: alice.address },
    ],
  },
};

const providers = new WeakMap<ApiPromise, WsProvider>();

async function connect(node: DevnetNode, headers?: Record<string, string>): Promise<ApiPromise> {
  const provider = new WsProvider(node.url, 1000, headers);
  const api = await ApiPromise.create({ provider, signedExtensions: SUBTENSOR_SIGNED_EXTENSIONS, noInitWarn: true, throwOnConnect: true });
  providers.set(api, provider);
  return api;
}

function providerOf(api: ApiPromise): WsProvider {
  const provider = providers.get(api);
  if (provider === undefined) throw new Error('api was not created by connect()');
  return provider;
}

/** `api.query.<section>.<method>` (untyped without a chain augmentation). */
function q(api: Pick<ApiPromise, 'query'>, section: string, method: string): QueryableStorageEntry<'promise'> {
  const entry = api.query[section]?.[method];
  if (entry === undefined) throw new Error(`no storage item ${section}.${method}`);
  return entry;
}

/** `api.tx.<section>.<method>(...args)`. */
function t(api: ApiPromise, section: string, method: string, ...args: unknown[]): SubmittableExtrinsic<'promise'> {
  const fn = api.tx[section]?.[method];
  if (fn === undefined) throw new Error(`no call ${section}.${method}`);
  return fn(...args);
}

const num = (c: Codec): number => Number(c.toJSON());

interface Sent {
  readonly result: string;
  readonly events: string[];
  readonly statuses: string[];
  readonly blockHash: string;
}

/** signAndSend, producing the inclusion block (and finality blocks) as soon as the pool has the tx. */
function send(api: ApiPromise, node: DevnetNode, ext: SubmittableExtrinsic<'promise'>, pair: KeyringPair, finalize = false): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const statuses: string[] = [];
    ext
      .signAndSend(pair, (res) => {
        statuses.push(res.status.type);
        // Finality blocks only after the client has seen InBlock (a real chain has seconds in between;
        // polkadot.js drops an InBlock still being processed when Finalized arrives).
        if (finalize && res.status.isInBlock) node.runtime.produceBlocks(node.runtime.finalityLag);
        if (res.status.isInvalid || res.status.isDropped) reject(new Error(`transaction ${res.status.type}`));
        const done = finalize ? res.status.isFinalized : res.status.isInBlock;
        if (!done) return;
        const error = res.dispatchError;
        resolve({
          result: error === undefined ? 'ok' : error.isModule ? api.registry.findMetaError(error.asModule).name : error.type,
          events: res.events.map((e) => `${e.event.section}.${e.event.method}`),
          statuses,
          blockHash: (finalize ? res.status.asFinalized : res.status.asInBlock).toHex(),
        });
      })
      .catch(reject);
    node.runtime.whenPending(1).then(() => node.runtime.produceBlocks(1), reject);
  });
}

/** A raw JSON-RPC WebSocket client that also collects notifications. */
async function rawClient(url: string, headers?: Record<string, string>): Promise<{ ws: WebSocket; request(body: unknown): Promise<unknown>; notifications: unknown[] }> {
  const ws = new WebSocket(url, { headers });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const notifications: unknown[] = [];
  const waiting: Array<(msg: unknown) => void> = [];
  ws.on('message', (data) => {
    const msg: unknown = JSON.parse(data.toString());
    if (typeof msg === 'object' && msg !== null && 'method' in msg && !('id' in msg)) notifications.push(msg);
    else waiting.shift()?.(msg);
  });
  return {
    ws,
    notifications,
    request: (body) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        ws.send(typeof body === 'string' ? body : JSON.stringify(body));
      }),
  };
}

describe('albedo-devnet node with a real ApiPromise', () => {
  let node: DevnetNode;
  let api: ApiPromise;

  beforeAll(async () => {
    node = await startDevnetNode({ ...baseOptions, stateHistory: 64 });
    node.runtime.produceBlocks(2);
    api = await connect(node);
  });
  afterAll(async () => {
    await api?.disconnect();
    await node?.close();
    expect(logs.filter((l) => l.includes('unimplemented'))).toEqual([]);
  });

  it('connects and reads genesis state through the metadata', async () => {
    expect(api.runtimeVersion.specVersion.toNumber()).toBe(381);
    expect(api.genesisHash.toHex()).toBe(node.runtime.genesisHash);
    expect((await api.rpc.system.chain()).toString()).toBe(DEVNET_CHAIN_NAME);
    expect((await api.rpc.system.name()).toString()).toBe(DEVNET_NODE_NAME);
    expect((await q(api, 'subtensorModule', 'burn')(97)).toString()).toBe(RAO_PER_TAO.toString());
    expect((await q(api, 'subtensorModule', 'uids')(97, bob.address)).toJSON()).toBe(0);
    const keys = await q(api, 'subtensorModule', 'keys').entries(97);
    expect(keys.map(([k, v]) => [k.args[1]?.toJSON(), v.toString()]).sort()).toEqual([
      [0, bob.address],
      [1, charlie.address],
    ]);
    expect(await q(api, 'commitments', 'revealedCommitments').entries(97)).toEqual([]);
    expect((await q(api, 'subtensorModule', 'owner')(eve.address)).toString()).toBe(ZERO_ACCOUNT);
    const beacon = (await q(api, 'drand', 'beaconConfig')()) as unknown as { publicKey: Codec; genesisTime: Codec };
    expect(beacon.publicKey.toHex()).toBe(u8aToHex(node.runtime.beacon.publicKey));
    expect(beacon.genesisTime.toJSON()).toBe(1692803367);
    const queryInfo = api.call.transactionPaymentApi?.queryInfo;
    if (queryInfo === undefined) throw new Error('no TransactionPaymentApi');
    const info = (await queryInfo(t(api, 'system', 'remark', '0x00').toHex(), 1)).toJSON() as { partialFee: number };
    expect(info.partialFee).toBe(0);
  });

  it('reads historical state with api.at and answers 4003 for pruned blocks', async () => {
    const early = node.runtime.best();
    node.runtime.produceBlocks(3);
    const at = await api.at(early.hash);
    expect(num(await q(at, 'system', 'number')())).toBe(early.number);
    expect((await api.rpc.chain.getBlockHash(early.number)).toHex()).toBe(early.hash);
    const header = await api.rpc.chain.getHeader(early.hash);
    expect(header.hash.toHex()).toBe(early.hash);
    node.runtime.produceBlocks(70);
    // A key not read at that block before (WsProvider caches per-block reads).
    await expect(api.rpc.state.getStorage(q(api, 'timestamp', 'now').key(), early.hash)).rejects.toThrow(/4003: .*State already discarded for 0x/);
  });

  it('streams new and finalized heads whose hashes match the served headers', async () => {
    const heads: string[] = [];
    const finalized: number[] = [];
    const unsubHeads = await api.rpc.chain.subscribeNewHeads((h) => {
      heads.push(h.hash.toHex());
    });
    const unsubFinal = await api.rpc.chain.subscribeFinalizedHeads((h) => {
      finalized.push(h.number.toNumber());
    });
    const blocks = node.runtime.produceBlocks(3);
    await expect.poll(() => heads.length).toBe(4); // current best first, then one per block
    expect(heads.slice(1)).toEqual(blocks.map((b) => b.hash));
    await expect.poll(() => finalized.at(-1)).toBe((blocks[2]?.number ?? 0) - 2);
    unsubHeads();
    unsubFinal();
    const block = await api.rpc.chain.getBlock(blocks[0]?.hash);
    expect(block.block.header.hash.toHex()).toBe(blocks[0]?.hash);
    expect(block.block.extrinsics[0]?.method.method).toBe('set');
  });

  it('burnedRegister via signAndSend reaches InBlock and Finalized with NeuronRegistered', async () => {
    const sent = await send(api, node, t(api, 'subtensorModule', 'burnedRegister', 97, eve.address), alice, true);
    expect(sent.result).toBe('ok');
    expect(sent.statuses).toEqual(['Ready', 'InBlock', 'Finalized']);
    expect(sent.events).toContain('subtensorModule.NeuronRegistered');
    expect((await q(api, 'subtensorModule', 'uids')(97, eve.address)).toJSON()).toBe(2);
    const again = await send(api, node, t(api, 'subtensorModule', 'burnedRegister', 97, eve.address), alice);
    expect(again.result).toBe('HotKeyAlreadyRegisteredInSubNet');
    expect(again.events).toContain('system.ExtrinsicFailed');
    const poor = await send(api, node, t(api, 'subtensorModule', 'burnedRegister', 97, dave.address), dave);
    expect(poor.result).toBe('NotEnoughBalanceToStake');
  });

  it('rejects bad signatures, stale nonces and duplicates at submission', async () => {
    const signed = await t(api, 'system', 'remark', '0x0102').signAsync(alice);
    const bytes = hexToU8a(signed.toHex());
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    await expect(api.rpc.author.submitExtrinsic(u8aToHex(bytes))).rejects.toThrow(/1010: Invalid Transaction: Transaction has a bad signature/);
    const stale = await t(api, 'system', 'remark', '0x03').signAsync(alice, { nonce: 0 });
    await expect(api.rpc.author.submitExtrinsic(stale.toHex())).rejects.toThrow(/1010: Invalid Transaction: Transaction is outdated/);
    const hash = await api.rpc.author.submitExtrinsic(signed.toHex());
    expect(hash.toHex()).toBe(signed.hash.toHex());
    expect((await api.rpc.author.pendingExtrinsics()).map((e) => e.toHex())).toEqual([signed.toHex()]);
    await expect(api.rpc.author.submitExtrinsic(signed.toHex())).rejects.toThrow(/1013: Transaction Already Imported/);
    node.runtime.produceBlocks(1);
    await expect(api.rpc.author.submitExtrinsic(signed.toHex())).rejects.toThrow(/1012: Transaction is temporarily banned/);
  });

  it('sets weights with the real checks and error names', async () => {
    const weights = (dests: number[], values: number[], version: number) => t(api, 'subtensorModule', 'setMechanismWeights', 97, 0, dests, values, version);
    expect((await send(api, node, weights([0, 1], [1, 1], 9), bob)).result).toBe('IncorrectWeightVersionKey');
    expect((await send(api, node, weights([0, 7], [1, 1], 10), bob)).result).toBe('UidVecContainInvalidOne');
    const ok = await send(api, node, weights([0, 1], [65535, 32768], 10), bob);
    expect(ok.result).toBe('ok');
    expect(ok.events).toContain('subtensorModule.WeightsSet');
    const block = (await api.rpc.chain.getHeader(ok.blockHash)).number.toNumber();
    expect(((await q(api, 'subtensorModule', 'lastUpdate')(97)).toJSON() as number[])[0]).toBe(block);
    expect((await q(api, 'subtensorModule', 'weights')(97, 0)).toJSON()).toEqual([
      [0, 65535],
      [1, 32768],
    ]);
    expect((await send(api, node, t(api, 'subtensorModule', 'setWeights', 97, [0], [1], 10), bob)).result).toBe('SettingWeightsTooFast');
  });

  it('reveals a timelocked commitment after dev_newBlock advances chain time; notifies storage only on change', async () => {
    const admin = new DevnetAdmin(providerOf(api));
    const info = await admin.info();
    expect(info.beacon.kind).toBe('local');
    const round = Math.floor((info.chainTimeMs / 1000 - info.beacon.genesisTime) / info.beacon.period) + 3;
    const publicKey = hexToU8a(info.beacon.publicKey);
    const encrypted = u8aToHex(timelockEncrypt({ round, plaintext: encodeScaleString('v7|org/repo|sha256:ab'), publicKey }));
    const commit = t(api, 'commitments', 'setCommitment', 97, { fields: [{ Raw3: 'raw' }, { TimelockEncrypted: { encrypted, reveal_round: round } }] });
    expect((await send(api, node, commit, bob)).result).toBe('ok');

    const key = q(api, 'commitments', 'revealedCommitments').key(97, bob.address);
    const raw = await rawClient(node.url);
    const subscribed = (await raw.request({ jsonrpc: '2.0', id: 1, method: 'state_subscribeStorage', params: [[key]] })) as { result: string };
    expect(typeof subscribed.result).toBe('string');
    await admin.newBlock({ count: 3 });
    await expect.poll(() => raw.notifications.length).toBe(1); // the initial value only: no change in 3 blocks
    const produced = await admin.newBlock({ advanceSeconds: 12 });
    await expect.poll(() => raw.notifications.length).toBe(2);
    const change = (raw.notifications[1] as { method: string; params: { subscription: string; result: { block: string; changes: Array<[string, string | null]> } } }).params;
    expect((raw.notifications[1] as { method: string }).method).toBe('state_storage');
    expect(change.subscription).toBe(subscribed.result);
    expect(change.result.block).toBe(produced.hash);
    expect(change.result.changes.map(([k]) => k)).toEqual([key]);
    await admin.newBlock({ count: 2 });
    expect(raw.notifications).toHaveLength(2);
    raw.ws.close();

    const entries = await q(api, 'commitments', 'revealedCommitments').entries(97);
    expect(entries).toHaveLength(1);
    const [, value] = entries[0] as [unknown, Codec];
    const reveals = (value as unknown as { unwrap(): Array<[Codec, Codec]> }).unwrap();
    expect(reveals[0]?.[0].toU8a(true)).toEqual(encodeScaleString('v7|org/repo|sha256:ab'));
    expect(reveals[0]?.[1].toJSON()).toBe(produced.number);
    const left = (await q(api, 'commitments', 'commitmentOf')(97, bob.address)).toJSON() as { info: { fields: unknown[] } };
    expect(left.info.fields).toEqual([{ raw3: '0x726177' }]);
  });

  it('swapHotkey leaves the old hotkey without an owner', async () => {
    const uid = (await q(api, 'subtensorModule', 'uids')(97, charlie.address)).toJSON();
    const registered = (await q(api, 'subtensorModule', 'blockAtRegistration')(97, uid)).toJSON();
    const sent = await send(api, node, t(api, 'subtensorModule', 'swapHotkey', charlie.address, dave.address, null), alice);
    expect(sent.result).toBe('ok');
    expect(sent.events).toContain('subtensorModule.HotkeySwapped');
    expect((await q(api, 'subtensorModule', 'owner')(charlie.address)).toString()).toBe(ZERO_ACCOUNT);
    expect((await q(api, 'subtensorModule', 'uids')(97, dave.address)).toJSON()).toBe(uid);
    expect((await q(api, 'subtensorModule', 'blockAtRegistration')(97, uid)).toJSON()).toBe(registered);
  });
});

describe('albedo-devnet node transport', () => {
  it('requires the bearer token when configured (WsProvider headers work)', async () => {
    const node = await startDevnetNode({ ...baseOptions, authToken: 's3cret' });
    try {
      const api = await connect(node, { Authorization: 'Bearer s3cret' });
      expect(api.runtimeVersion.specVersion.toNumber()).toBe(381);
      await api.disconnect();
      const status = await new Promise<number | undefined>((resolve) => {
        const ws = new WebSocket(node.url, { headers: { Authorization: 'Bearer wrong' } });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
      expect(status).toBe(401);
      const admin = new DevnetAdmin(await RawWsSender.connect(node.url, { token: 's3cret' }));
      expect((await admin.newBlock({ count: 2 })).number).toBe(2);
      await expect(RawWsSender.connect(node.url)).rejects.toThrow(/HTTP 401/);
    } finally {
      await node.close();
    }
  });

  it('answers protocol errors, batches and oversize messages like a JSON-RPC 2.0 server', async () => {
    const node = await startDevnetNode({ ...baseOptions, maxPayloadBytes: 4096, host: '127.0.0.1' });
    try {
      expect(node.url.startsWith('ws://127.0.0.1:')).toBe(true);
      const c = await rawClient(node.url);
      expect(await c.request('{oops')).toMatchObject({ id: null, error: { code: -32700 } });
      expect(await c.request({ jsonrpc: '2.0', id: 1, method: 'nope_nope', params: [] })).toMatchObject({ id: 1, error: { code: -32601 } });
      expect(await c.request({ jsonrpc: '2.0', id: 2, method: 'state_getStorage', params: ['zz'] })).toMatchObject({ id: 2, error: { code: -32602 } });
      expect(await c.request({ jsonrpc: '2.0', id: 3, method: 'chain_getHeader', params: [null, 1] })).toMatchObject({ id: 3, error: { code: -32602 } });
      expect(await c.request([])).toMatchObject({ error: { code: -32600 } });
      const batch = (await c.request([
        { jsonrpc: '2.0', id: 'a', method: 'system_chain', params: [] },
        { jsonrpc: '2.0', id: 'b', method: 'nope', params: [] },
      ])) as Array<{ id: string }>;
      expect(batch.map((r) => r.id)).toEqual(['a', 'b']);
      const admin = new DevnetAdmin(await RawWsSender.connect(node.url));
      await expect(admin.newBlock({ count: 0 })).rejects.toBeInstanceOf(DevnetAdminError);
      const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
      c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'system_chain', params: ['x'.repeat(5000)] }));
      expect(await closed).toBe(1009);
    } finally {
      await node.close();
    }
  });
});
