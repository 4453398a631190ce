import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { type Backend, startBackend } from '../../actors/backend.ts';
import type { InProcessExecutor } from '../../actors/stage-service.ts';
import { FAST_LIMITS, randomReveal } from '../support/pipeline-kit.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { waitFor } from '../support/wait.ts';

const ok: InProcessExecutor = async () => ({ outcome: { status: 'succeeded', result: {} } });

/** `--inspect`: every actor is streamed to a Stately inspector WebSocket server (@statelyai/inspect). */
describe('Stately inspector over WebSocket', () => {
  let t: TestDatabase;
  let backend: Backend;
  let wss: WebSocketServer;
  const received: Array<{ type: string; snapshot?: { value?: unknown } }> = [];

  beforeAll(async () => {
    t = await freshDatabase(testServers()[0]!);
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => ws.on('message', (m) => received.push(JSON.parse(m.toString()))));
    backend = await startBackend({
      db: t.db,
      nodeId: 'inspect-test',
      tokens: { operator: 'operator-token-0123456789' },
      executors: { HIPPIUS: ok },
      judge: null,
      limits: FAST_LIMITS,
      inspectUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    });
  });
  afterAll(async () => {
    await backend?.close();
    wss?.close();
    await t?.drop();
  });

  it('receives actor, event and snapshot inspection events, without fencing tokens', async () => {
    await backend.host.ingest(randomReveal());
    await waitFor(async () => received.some((e) => e.type === '@xstate.snapshot' && e.snapshot?.value === 'PRE_EVAL_QUEUED'), { what: 'snapshots at the inspector' });
    expect(new Set(received.map((e) => e.type))).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    expect(JSON.stringify(received)).not.toMatch(/"leaseToken":"[0-9a-f-]{36}"/);
  });
});
