import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ChainError, setWeightsOnce } from '../client.ts';
import { parseReveal } from '../reveal.ts';
import { normalizeWeightsU16 } from '../weights.ts';
import { DevChainClient, DevChainRpcError, DevChainTransportError, devChainMiner } from './client.ts';
import { type DevBlockHeader, RPC_ERROR } from './protocol.ts';
import { type DevChain, type DevChainOptions, startDevChain } from './server.ts';

const NETUID = 97;
const REVEAL = `v7|example/albedo-qwen3.6-35b-demo|sha256:${'0'.repeat(64)}`;
const quiet = (): void => undefined;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function chain(options: DevChainOptions = {}): Promise<DevChain> {
  const c = await startDevChain({ blockTimeMs: 0, log: quiet, ...options });
  cleanups.push(() => c.close());
  return c;
}
function client(url: string, options: ConstructorParameters<typeof DevChainClient>[1] = {}): DevChainClient {
  const c = new DevChainClient(url, options);
  cleanups.push(() => c.close());
  return c;
}
async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** A raw WebSocket that collects every message, for protocol-level tests. */
async function rawSocket(url: string): Promise<{ ws: WebSocket; next: () => Promise<unknown>; closed: Promise<number> }> {
  const ws = new WebSocket(url);
  const inbox: unknown[] = [];
  const waiting: Array<(m: unknown) => void> = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as unknown;
    const w = waiting.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanups.push(async () => ws.terminate());
  const next = (): Promise<unknown> => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve) => waiting.push(resolve)));
  return { ws, next, closed };
}

describe('local stand-in chain over WebSocket JSON-RPC', () => {
  it('register → commit → revealedCommitments sees it with the right block hash', async () => {
    const c = await chain();
    const reader = client(c.url);
    const miner = devChainMiner(c.url, { netuid: NETUID });
    cleanups.push(() => miner.close());

    expect(await miner.register('miner-1')).toEqual({ uid: 0, registrationBlock: 0, alreadyRegistered: false });
    expect(await reader.uidOf(NETUID, 'miner-1')).toBe(0);
    expect(await reader.hotkeyOf(NETUID, 0)).toBe('miner-1');
    expect(await reader.uidOf(NETUID, 'nobody')).toBeNull();

    const { queuedForBlock } = await miner.commit('miner-1', REVEAL);
    expect(queuedForBlock).toBe(1);
    expect(await reader.revealedCommitments(NETUID)).toEqual([]);
    const block = await c.produceBlock();

    const reveals = await reader.revealedCommitments(NETUID);
    expect(reveals).toHaveLength(1);
    const [r] = reveals;
    expect(r?.hotkey).toBe('miner-1');
    expect(r?.block).toBe(block.number);
    expect(r?.blockHash).toBe(block.hash);
    expect(await reader.bestBlock()).toEqual({ number: block.number, hash: block.hash });
    expect(await reader.blockHash(block.number)).toBe(block.hash);
    const parsed = parseReveal(r?.bytes ?? new Uint8Array());
    expect(parsed.ok && parsed.reveal.modelUri).toBe(`example/albedo-qwen3.6-35b-demo@sha256:${'0'.repeat(64)}`);
    expect(await reader.revealedCommitments(NETUID, 0)).toEqual([]);
  });

  it('a delayed reveal appears at its reveal block, hashed with that block', async () => {
    const c = await chain();
    const miner = devChainMiner(c.url, { netuid: NETUID });
    cleanups.push(() => miner.close());
    await miner.register('m');
    await miner.commit('m', REVEAL, 3);
    await c.produceBlocks(2);
    expect(await miner.client.revealedCommitments(NETUID)).toEqual([]);
    const b3 = await c.produceBlock();
    const [r] = await miner.client.revealedCommitments(NETUID);
    expect([r?.block, r?.blockHash]).toEqual([3, b3.hash]);
  });

  it('setWeights waits for inclusion; a duplicate within the rate limit is weight_set_rate_limited', async () => {
    const c = await chain({ weightsRateLimitBlocks: 3 });
    const validator = client(c.url);
    await validator.register(NETUID, 'validator');
    await validator.register(NETUID, 'king');
    const u16 = normalizeWeightsU16([0, 1], [0.25, 0.75]);
    const request = { netuid: NETUID, uids: u16.uids, weights: u16.weights, versionKey: 10003000, signer: 'validator' };

    const pending = validator.setWeights(request);
    await c.whenPending(1);
    const block = await c.produceBlock();
    const result = await pending;
    expect(result.includedInBlock).toBe(block.number);
    expect(block.extrinsics).toEqual([result.extrinsicHash]);
    expect(await validator.lastWeightsSetBlock(NETUID, 'validator')).toBe(block.number);
    expect(await validator.weights(NETUID)).toEqual([
      { hotkey: 'validator', uid: 0, uids: [0, 1], weights: [21845, 65535], versionKey: 10003000, block: block.number },
    ]);

    const dup = await caught(validator.setWeights(request));
    expect(dup).toBeInstanceOf(ChainError);
    expect((dup as ChainError).code).toBe('weight_set_rate_limited');
    expect((dup as ChainError).toStageFault()).toMatchObject({ faultClass: 'CHAIN_FAULT', code: 'weight_set_rate_limited', retryable: true });
    expect(c.pendingExtrinsics()).toBe(0);

    await c.produceBlocks(3); // best = 4; next block 5: 5 − 1 > 3
    const again = validator.setWeights(request);
    await c.whenPending(1);
    const b5 = await c.produceBlock();
    expect((await again).includedInBlock).toBe(b5.number);
  });

  it('setWeights by an unregistered hotkey is weight_set_rejected', async () => {
    const c = await chain();
    const v = client(c.url);
    const e = await caught(v.setWeights({ netuid: NETUID, uids: [0], weights: [65535], versionKey: 0, signer: 'ghost' }));
    expect(e).toMatchObject({ name: 'ChainError', code: 'weight_set_rejected' });
    await v.register(NETUID, 'val');
    const bad = await caught(v.setWeights({ netuid: NETUID, uids: [7], weights: [65535], versionKey: 0, signer: 'val' }));
    expect(bad).toMatchObject({ code: 'weight_set_rejected', message: expect.stringContaining('UidVecContainInvalidOne') });
  });

  it('after weight_set_timeout a retry checks chain state first and never double-submits', async () => {
    const c = await chain({ weightsRateLimitBlocks: 0 });
    const v = client(c.url, { inclusionTimeoutMs: 200 });
    await v.register(NETUID, 'val');
    const claimBlock = (await v.bestBlock()).number;
    const request = { netuid: NETUID, uids: [0], weights: [65535], versionKey: 0, signer: 'val' };

    const e = await caught(v.setWeights(request)); // no block is produced, so inclusion never comes in time
    expect(e).toBeInstanceOf(ChainError);
    expect((e as ChainError).code).toBe('weight_set_timeout');
    const hash = (e as ChainError).extrinsicHash;
    expect(hash).toMatch(/^0x[0-9a-f]{64}$/);

    const late = await c.produceBlock(); // …but the extrinsic lands afterwards
    expect(late.extrinsics).toEqual([hash]);
    const retry = await setWeightsOnce(v, request, { sinceBlock: claimBlock });
    expect(retry).toEqual({ alreadyIncluded: true, extrinsicHash: null, includedInBlock: late.number });
    expect(c.pendingExtrinsics()).toBe(0);
    expect((await c.produceBlock()).extrinsics).toEqual([]);
  });

  it('delivers new heads to subscribers', async () => {
    const c = await chain();
    const v = client(c.url);
    await v.ready();
    const heads: DevBlockHeader[] = [];
    const second = new Promise<void>((resolve) =>
      v.onNewHead((h) => {
        heads.push(h);
        if (heads.length === 2) resolve();
      }),
    );
    await v.bestBlock(); // the head subscription is sent right after connecting; this call is ordered after it
    const b1 = await c.produceBlock();
    const b2 = await c.produceBlock();
    await second;
    expect(heads).toEqual([b1, b2]);
  });

  it('the client survives a server restart (dataFile) and sees the persisted state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'albedo-devnet-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const dataFile = join(dir, 'chain.json');
    const first = await startDevChain({ blockTimeMs: 0, dataFile, log: quiet });
    const v = client(first.url, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    await v.register(NETUID, 'miner-1');
    await v.commit({ netuid: NETUID, hotkey: 'miner-1', reveal: REVEAL });
    const revealBlock = await first.produceBlock();
    await first.produceBlock();
    const best = first.bestBlock();
    expect(v.connectionCount).toBe(1);

    const disconnected = new Promise<void>((resolve) => {
      const poll = (): void => (v.connected ? void setImmediate(poll) : resolve());
      poll();
    });
    await first.close();
    await disconnected;

    const second = await startDevChain({ blockTimeMs: 0, dataFile, port: first.port, log: quiet });
    cleanups.push(() => second.close());
    expect(second.bestBlock()).toEqual(best);

    // issued right away: waits for the reconnect, then answers from the restored state
    const reveals = await v.revealedCommitments(NETUID);
    expect(reveals.map((r) => [r.hotkey, r.block, r.blockHash])).toEqual([['miner-1', revealBlock.number, revealBlock.hash]]);
    expect(await v.bestBlock()).toEqual(best);
    expect(await v.uidOf(NETUID, 'miner-1')).toBe(0);
    expect(v.connectionCount).toBeGreaterThanOrEqual(2);

    // head subscription is re-established; the hash chain continues from the persisted best block
    const head = new Promise<DevBlockHeader>((resolve) => v.onNewHead(resolve));
    await v.bestBlock();
    const next = await second.produceBlock();
    expect(next.parentHash).toBe(best.hash);
    expect(await head).toEqual(next);
  });

  it('refuses a corrupt data file instead of starting over it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'albedo-devnet-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const dataFile = join(dir, 'chain.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(dataFile, JSON.stringify({ format: 'something-else' }));
    await expect(startDevChain({ blockTimeMs: 0, dataFile, log: quiet })).rejects.toThrow(/invalid/);
  });

  it('answers garbage with JSON-RPC errors and keeps serving', async () => {
    const c = await chain({ maxPayloadBytes: 4096 });
    const { ws, next } = await rawSocket(c.url);

    ws.send('{not json');
    expect(await next()).toEqual({ jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.parse, message: expect.any(String) } });
    ws.send(Buffer.from([0xff, 0xfe, 0x00]), { binary: true });
    expect(await next()).toMatchObject({ id: null, error: { code: RPC_ERROR.parse } });
    ws.send('42');
    expect(await next()).toMatchObject({ id: null, error: { code: RPC_ERROR.invalidRequest } });
    ws.send('[]');
    expect(await next()).toMatchObject({ id: null, error: { code: RPC_ERROR.invalidRequest } });
    ws.send(JSON.stringify({ jsonrpc: '1.0', id: 1, method: 'albedoDev_bestBlock' }));
    expect(await next()).toMatchObject({ id: 1, error: { code: RPC_ERROR.invalidRequest } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: { x: 1 }, method: 'albedoDev_bestBlock' }));
    expect(await next()).toMatchObject({ id: null, error: { code: RPC_ERROR.invalidRequest } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'system_chain' }));
    expect(await next()).toMatchObject({ id: 2, error: { code: RPC_ERROR.methodNotFound } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'albedoDev_register', params: { netuid: -1, hotkey: 'a b' } }));
    expect(await next()).toMatchObject({ id: 3, error: { code: RPC_ERROR.invalidParams, data: expect.any(String) } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'albedoDev_register', params: { netuid: 1, hotkey: 'a', extra: true } }));
    expect(await next()).toMatchObject({ id: 4, error: { code: RPC_ERROR.invalidParams } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'albedoDev_commit', params: { netuid: 1, hotkey: 'a', reveal: 'x' } }));
    expect(await next()).toMatchObject({ id: 5, error: { code: RPC_ERROR.rejected, data: { error: 'AccountNotAllowedCommit' } } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'albedoDev_revealedCommitments', params: { netuid: 1, atBlock: 99 } }));
    expect(await next()).toMatchObject({ id: 6, error: { code: RPC_ERROR.unknownBlock } });
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: '__proto__' }));
    expect(await next()).toMatchObject({ id: 7, error: { code: RPC_ERROR.methodNotFound } });
    ws.send(`${'['.repeat(1500)}${']'.repeat(1500)}`); // a batch holding one (non-object) request
    expect(await next()).toEqual([{ jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: expect.any(String) } }]);
    // a notification (no id) gets no answer; a batch gets one array, in order
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'albedoDev_bestBlock' }));
    ws.send(
      JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'albedoDev_bestBlock' },
        { jsonrpc: '2.0', method: 'albedoDev_bestBlock' },
        { jsonrpc: '2.0', id: 'b', method: 'nope' },
        17,
      ]),
    );
    expect(await next()).toEqual([
      { jsonrpc: '2.0', id: 'a', result: c.bestBlock() },
      { jsonrpc: '2.0', id: 'b', error: { code: RPC_ERROR.methodNotFound, message: expect.any(String) } },
      { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: expect.any(String) } },
    ]);
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'albedoDev_info', params: [] }));
    expect(await next()).toMatchObject({ id: 8, result: { standIn: true, label: expect.stringContaining('NOT SUBTENSOR') } });

    // an oversize message closes only that connection (1009); the server keeps serving others
    const big = await rawSocket(c.url);
    big.ws.send('x'.repeat(8192));
    expect(await big.closed).toBe(1009);
    const v = client(c.url);
    expect(await v.bestBlock()).toEqual(c.bestBlock());
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'albedoDev_bestBlock' }));
    expect(await next()).toMatchObject({ id: 9, result: c.bestBlock() });
  });

  it('requires the bearer token when configured', async () => {
    const c = await chain({ authToken: 's3cret' });
    const anonymous = client(c.url, { requestTimeoutMs: 300 });
    const e = await caught(anonymous.bestBlock());
    expect(e).toBeInstanceOf(DevChainTransportError);
    expect((e as DevChainTransportError).message).toMatch(/401/);
    const wrong = client(c.url, { requestTimeoutMs: 300, authToken: 's3creT' });
    expect(await caught(wrong.bestBlock())).toBeInstanceOf(DevChainTransportError);
    const ok = client(c.url, { authToken: 's3cret' });
    expect((await ok.bestBlock()).number).toBe(0);
  });

  it('surfaces JSON-RPC errors from helpers as DevChainRpcError', async () => {
    const c = await chain();
    const miner = devChainMiner(c.url);
    cleanups.push(() => miner.close());
    const e = await caught(miner.commit('unregistered', REVEAL));
    expect(e).toBeInstanceOf(DevChainRpcError);
    expect((e as DevChainRpcError).runtimeError).toBe('AccountNotAllowedCommit');
    await miner.register('m');
    await miner.commitBytes('m', Uint8Array.of(0x04, 0xff));
    await c.produceBlock();
    const [r] = await miner.client.revealedCommitments(97);
    expect(r?.bytes).toEqual(Uint8Array.of(0x04, 0xff));
    expect(parseReveal(r?.bytes ?? new Uint8Array()).ok).toBe(false);
  });

  it('a closed client rejects calls', async () => {
    const c = await chain();
    const v = new DevChainClient(c.url);
    await v.ready();
    await v.close();
    expect(await caught(v.bestBlock())).toMatchObject({ kind: 'closed' });
  });
});

describe('timer-driven blocks', () => {
  it('produces blocks on its own and setWeights completes without manual blocks', async () => {
    const c = await chain({ blockTimeMs: 10, weightsRateLimitBlocks: 0 });
    const v = client(c.url);
    await v.register(NETUID, 'val');
    const result = await v.setWeights({ netuid: NETUID, uids: [0], weights: [65535], versionKey: 0, signer: 'val' });
    expect(result.includedInBlock).toBeGreaterThan(0);
    expect(await v.lastWeightsSetBlock(NETUID, 'val')).toBe(result.includedInBlock);
    const status = await v.extrinsicStatus(result.extrinsicHash);
    expect(status).toMatchObject({ status: 'included', block: result.includedInBlock, success: true });
  });
});

describe('server fuzz', () => {
  it('survives 1,000 random frames and random params for every method', async () => {
    const c = await chain();
    const { ws, next } = await rawSocket(c.url);
    let seed = 0x5eed;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const methods = ['albedoDev_register', 'albedoDev_commit', 'albedoDev_setWeights', 'albedoDev_revealedCommitments', 'albedoDev_produceBlock', 'albedoDev_unsubscribeNewHeads', 'albedoDev_blockHash', 'albedoDev_extrinsicStatus'];
    const values = [null, true, -1, 0, 1, 97, 65536, 1.5, 'a', 'x'.repeat(300), [], [1, 2], { a: 1 }, '0xzz', '0x00', Number.MAX_SAFE_INTEGER];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    let expected = 0;
    for (let i = 0; i < 1000; i++) {
      if (i % 2 === 0) {
        // binary frames: random bytes; text frames: random JSON-ish text (a text frame with invalid
        // UTF-8 is a WebSocket protocol error that closes the connection with 1007, by design of `ws`)
        const binary = rand() < 0.5;
        const bytes = Buffer.alloc(Math.floor(rand() * 64));
        const alphabet = '{}[]":,0123456789.-eEtrufalsn \\u';
        for (let k = 0; k < bytes.length; k++) bytes[k] = binary ? Math.floor(rand() * 256) : alphabet.charCodeAt(Math.floor(rand() * alphabet.length));
        ws.send(binary ? bytes : bytes.toString('latin1'), { binary });
      } else {
        const params = Object.fromEntries(['netuid', 'hotkey', 'uids', 'weights', 'versionKey', 'reveal', 'dataHex', 'atBlock', 'count', 'number', 'hash', 'subscription'].filter(() => rand() < 0.4).map((k) => [k, pick(values)]));
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: pick(methods), params }));
      }
      expected++;
    }
    for (let i = 0; i < expected; i++) await next(); // at least one answer (result or error) per frame
    expect(ws.readyState).toBe(WebSocket.OPEN);
    const v = client(c.url);
    expect((await v.bestBlock()).number).toBe(c.bestBlock().number);
  });
});
