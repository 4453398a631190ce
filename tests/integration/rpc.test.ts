import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type Backend, startBackend } from '../../actors/backend.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from '../support/pipeline-kit.ts';
import { bootstrapGenesis } from '../../persistence/genesis.ts';
import { type AlbedoClient, createAlbedoClient } from '../../rpc/client.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { waitFor } from '../support/wait.ts';

const OPERATOR = 'operator-token-0123456789';
const READER = 'reader-token-0123456789ab';
const NODE = 'node-token-0123456789abcd';
const ok: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });
const allInProcess = { HIPPIUS: ok, PRE_EVAL: ok, EVAL: (async () => ({ outcome: { status: 'succeeded', result: { challengerWon: false } } })) as InProcessExecutor, SET_REIGN: ok, WEIGHT_SET: ok };

function client(url: string, token?: string): AlbedoClient {
  return createAlbedoClient({ url, token, WebSocket, retryDelayMs: () => 50 });
}

describe('typed RPC over WebSocket', () => {
  let t: TestDatabase;
  let backend: Backend;
  const clients: AlbedoClient[] = [];
  const open = (token?: string) => {
    const c = client(backend.url, token);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await freshDatabase(testServers()[0]!);
    await bootstrapGenesis(t.db, { netuid: 97, hotkey: 'genesis', uid: 0, modelUri: 'g/albedo-qwen3.6-35b-genesis@sha256:' + '0'.repeat(64) });
    backend = await startBackend({
      db: t.db,
      nodeId: 'rpc-test',
      tokens: { operator: OPERATOR, reader: READER, nodes: { 'gpu-1': NODE } },
      executors: allInProcess,
      judge: null,
      limits: FAST_LIMITS,
    });
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await backend?.close();
    await t?.drop();
  });

  it('listens on loopback only, on a free port', () => {
    expect(backend.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/rpc$/);
  });

  it('runs a submission end to end with the actor host calling stages over its tRPC link', async () => {
    const { id } = await backend.host.ingest(randomReveal());
    const api = open(READER).api;
    await waitFor(async () => (await api.submissions.byId.query({ id })).submission.state === 'COMPLETE_LOSS', { what: 'COMPLETE_LOSS' });
    const detail = await api.submissions.byId.query({ id });
    expect(detail.transitions.map((x: { to_state: string }) => x.to_state)).toEqual([
      'SUBMITTED', 'HIPPIUS_RUNNING', 'HIPPIUS_VALIDATED', 'PRE_EVAL_QUEUED', 'PRE_EVAL_RUNNING', 'PRE_EVAL_PASSED', 'EVAL_QUEUED', 'EVAL_RUNNING', 'COMPLETE_LOSS',
    ]);
    expect(detail.events.map((e: { event_type: string }) => e.event_type)).toContain('eval_succeeded');
    const reign = await api.reign.query();
    expect(reign?.members[0]?.hotkey).toBe('genesis');
  });

  it('the queue reports positions and an ETA from measured stage durations', async () => {
    const api = open(READER).api;
    const q = await api.queue.query({ limit: 10 });
    // The first test ran every stage: each has a measured mean duration now.
    for (const stage of ['HIPPIUS', 'PRE_EVAL', 'EVAL']) expect(q.measuredStageMs[stage]).toBeGreaterThan(0);
    for (const [i, item] of q.items.entries()) expect(item.position).toBe(i + 1);
  });

  it('malformed input gets a zod error naming the field', async () => {
    const api = open(READER).api;
    const err = await api.submissions.byId.query({ id: 'not-a-uuid' }).catch((e) => e);
    expect(err.data.code).toBe('BAD_REQUEST');
    expect(JSON.stringify(err.data.zodIssues)).toContain('"id"');
    const err2 = await api.submissions.list.query({ limit: 10_000 }).catch((e) => e);
    expect(JSON.stringify(err2.data.zodIssues)).toContain('"limit"');
  });

  it('refuses an unauthenticated mutation and a reader mutation', async () => {
    const anon = open().api;
    const id = '00000000-0000-4000-8000-000000000000';
    const e1 = await anon.operator.cancel.mutate({ id, reason: 'x' }).catch((e) => e);
    expect(e1.data.code).toBe('UNAUTHORIZED');
    const e2 = await open(READER).api.operator.cancel.mutate({ id, reason: 'x' }).catch((e) => e);
    expect(e2.data.code).toBe('FORBIDDEN');
    const e3 = await anon.submissions.list.query({}).catch((e) => e);
    expect(e3.data.code).toBe('UNAUTHORIZED'); // reads are private unless ALBEDO_API_PUBLIC=1
  });

  it('refuses a wrong token at the WebSocket upgrade (HTTP 401), for SDK clients and GPU nodes alike', async () => {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(backend.url, { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(status).toBe(401);
  });

  it('a node token only reaches node procedures; the node identity comes from the token', async () => {
    const node = open(NODE).api;
    const e = await node.submissions.list.query({}).catch((x) => x);
    expect(e.data.code).toBe('FORBIDDEN');
    expect(await node.node.hello.mutate({ role: 'EVAL', gpuCount: 8, maxConcurrent: 1 })).toEqual({ nodeId: 'gpu-1' });
    const row = await t.db.query('SELECT state, gpu_count FROM remote_gpu_hosts WHERE id = $1', ['gpu-1']);
    expect(row.rows[0]).toEqual({ state: 'READY', gpu_count: 8 });
  });

  it('operator actions: ban and unban are audited', async () => {
    const op = open(OPERATOR).api;
    await op.operator.banHotkey.mutate({ hotkey: 'bad-hotkey', reason: 'sybil' });
    expect((await t.db.query("SELECT kind FROM hotkey_bans WHERE hotkey = 'bad-hotkey'")).rows).toEqual([{ kind: 'operator' }]);
    await op.operator.unbanHotkey.mutate({ hotkey: 'bad-hotkey' });
    const audit = await t.db.query("SELECT action FROM operator_actions WHERE target = 'bad-hotkey' ORDER BY id");
    expect(audit.rows.map((r) => r.action)).toEqual(['ban', 'unban']);
  });

  it('streams Stately inspection events of the actors (live.inspect)', async () => {
    const events: Array<{ type: string; sessionId?: string; snapshot?: { value?: unknown } }> = [];
    let sub: { unsubscribe(): void } | undefined;
    await new Promise<void>((started) => {
      sub = open(READER).api.live.inspect.subscribe(undefined, { onStarted: () => started(), onData: (e) => events.push(e as never) });
    });
    await backend.host.ingest(randomReveal());
    await waitFor(async () => events.some((e) => e.type === '@xstate.snapshot' && e.snapshot?.value === 'COMPLETE_LOSS'), { what: 'inspection snapshot' });
    sub?.unsubscribe();
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    // Fencing tokens never leave the backend, not even through the inspector.
    expect(JSON.stringify(events)).not.toMatch(/"leaseToken":"[0-9a-f-]{36}"/);
  });

  it('live transitions resume after a dropped socket without loss or duplication', async () => {
    const seen: string[] = [];
    const c = open(READER);
    const sub = c.api.live.transitions.subscribe({ lastEventId: '0' }, { onData: (d) => seen.push(d.id) });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await backend.host.ingest(randomReveal())).id);
    await waitFor(async () => seen.length >= 5, { what: 'first transitions' });
    // Kill every server-side socket: the client reconnects and resubscribes from the last id.
    backend.rpc.dropAll();
    await waitFor(async () => {
      const { rows } = await t.db.query("SELECT count(*)::int AS n FROM model_submissions WHERE id = ANY($1) AND state = 'COMPLETE_LOSS'", [ids]);
      return rows[0].n === 3;
    });
    const total = (await t.db.query('SELECT count(*)::int AS n FROM actor_transitions')).rows[0].n;
    await waitFor(async () => seen.length >= total, { what: `all ${total} transitions delivered` });
    sub.unsubscribe();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(total);
  });
});

