/**
 * WebSocket JSON-RPC server of the LOCAL STAND-IN dev chain (`albedo-devnet`): the substrate RPC surface a
 * real `@polkadot/api` `ApiPromise` needs, over a {@link DevnetRuntime}. Binds 127.0.0.1 by default;
 * optional bearer token on the upgrade; inbound messages capped (oversize closes with 1009); batches
 * answered or rejected as a whole; bad JSON -32700, unknown method -32601, bad params -32602.
 *
 * Subscriptions notify with substrate's notification names (`chain_newHead`, `chain_finalizedHead`,
 * `chain_allHead`, `state_storage`, `state_runtimeVersion`, `author_extrinsicUpdate`); the first
 * notification of a subscription is sent after the response carrying its id.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { DEVNET_LABEL } from './genesis.ts';
import { type MethodDef, RPC_ERROR, RpcError, createMethods } from './rpc-node-methods.ts';
import { type BlockRecord, DevnetRuntime, type RuntimeNotification, type RuntimeOptions, type TxStatus, headerJson } from './runtime.ts';
import { PoolError } from './runtime-extrinsics.ts';
import { bearerMatches } from '../../rpc/auth.ts';

export const DEFAULT_HOST = '127.0.0.1';
/** Largest inbound message (bytes); bigger ones close the connection with 1009. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 64;
export const DEFAULT_MAX_BATCH = 64;
/** substrate's default per-connection subscription cap. */
export const DEFAULT_MAX_SUBSCRIPTIONS = 1024;
/** Keys one `state_subscribeStorage` may watch. */
export const MAX_SUBSCRIBED_KEYS = 4096;
/** A client that lets this much outbound data pile up is disconnected. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const HEARTBEAT_MS = 30_000;

export interface DevnetNodeOptions extends RuntimeOptions {
  /** Listen address. @default '127.0.0.1' (use 0.0.0.0 only deliberately) */
  readonly host?: string;
  /** @default 0 (ephemeral) */
  readonly port?: number;
  /** Require `Authorization: Bearer <token>` on the WebSocket upgrade (401 otherwise). */
  readonly authToken?: string;
  /** Produce a block every this many ms; 0 = on demand only (`produceBlocks`, `dev_newBlock`). @default 0 */
  readonly blockTimeMs?: number;
  readonly maxPayloadBytes?: number;
  readonly maxConnections?: number;
  readonly maxBatch?: number;
  readonly maxSubscriptionsPerConnection?: number;
}

export interface DevnetNode {
  /** `ws://host:port` */
  readonly url: string;
  readonly port: number;
  readonly runtime: DevnetRuntime;
  /** Stops the timer, disconnects clients, closes the listener and compacts the data file. Idempotent. */
  close(): Promise<void>;
}

type SubscriptionKind = 'newHead' | 'allHead' | 'finalizedHead' | 'storage' | 'runtimeVersion' | 'extrinsic';

interface Subscription {
  readonly kind: SubscriptionKind;
  /** Storage keys (lowercase), `null` = every change. */
  readonly keys?: ReadonlySet<string> | null;
  readonly txHash?: string;
}

interface Connection {
  readonly ws: WebSocket;
  readonly subs: Map<string, Subscription>;
  alive: boolean;
}

type JsonRpcId = string | number | null;

const NOTIFICATION: Record<SubscriptionKind, string> = {
  newHead: 'chain_newHead',
  allHead: 'chain_allHead',
  finalizedHead: 'chain_finalizedHead',
  storage: 'state_storage',
  runtimeVersion: 'state_runtimeVersion',
  extrinsic: 'author_extrinsicUpdate',
};

const SUBSCRIBE: Record<string, SubscriptionKind> = {
  chain_subscribeNewHeads: 'newHead',
  chain_subscribeNewHead: 'newHead',
  subscribe_newHead: 'newHead',
  chain_subscribeAllHeads: 'allHead',
  chain_subscribeFinalizedHeads: 'finalizedHead',
  chain_subscribeFinalisedHeads: 'finalizedHead',
  state_subscribeStorage: 'storage',
  state_subscribeRuntimeVersion: 'runtimeVersion',
  chain_subscribeRuntimeVersion: 'runtimeVersion',
  author_submitAndWatchExtrinsic: 'extrinsic',
};

const UNSUBSCRIBE = new Set([
  'chain_unsubscribeNewHeads',
  'chain_unsubscribeNewHead',
  'unsubscribe_newHead',
  'chain_unsubscribeAllHeads',
  'chain_unsubscribeFinalizedHeads',
  'chain_unsubscribeFinalisedHeads',
  'state_unsubscribeStorage',
  'state_unsubscribeRuntimeVersion',
  'chain_unsubscribeRuntimeVersion',
  'author_unwatchExtrinsic',
]);

function isTerminal(status: TxStatus): boolean {
  return status === 'invalid' || status === 'dropped' || (typeof status === 'object' && 'finalized' in status);
}


/**
 * Starts the dev chain node (creating its runtime, or resuming from `dataFile`). Resolves once it listens.
 * @example const node = await startDevnetNode(); node.runtime.produceBlocks(1); await node.close();
 */
export async function startDevnetNode(options: DevnetNodeOptions = {}): Promise<DevnetNode> {
  const host = options.host ?? DEFAULT_HOST;
  const blockTimeMs = options.blockTimeMs ?? 0;
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxSubs = options.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!Number.isSafeInteger(blockTimeMs) || blockTimeMs < 0) throw new RangeError(`blockTimeMs must be a non-negative integer: ${blockTimeMs}`);
  if (options.authToken !== undefined && options.authToken.length === 0) throw new RangeError('authToken must not be empty');

  const runtime = await DevnetRuntime.create({ ...options, log });
  const connections = new Set<Connection>();
  const unimplemented = new Set<string>();
  let closed = false;

  const send = (conn: Connection, message: unknown): void => {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      log('[albedo-devnet] dropping a client that does not read its messages');
      conn.ws.terminate();
      return;
    }
    conn.ws.send(JSON.stringify(message));
  };
  const notify = (conn: Connection, id: string, kind: SubscriptionKind, result: unknown): void => {
    send(conn, { jsonrpc: '2.0', method: NOTIFICATION[kind], params: { subscription: id, result } });
  };

  // ---- runtime → subscriptions ----------------------------------------------------------------

  const onBlock = (block: BlockRecord, changes: ReadonlyMap<string, string | null>): void => {
    const header = headerJson(block);
    for (const conn of connections) {
      for (const [id, sub] of conn.subs) {
        if (sub.kind === 'newHead' || sub.kind === 'allHead') notify(conn, id, sub.kind, header);
        else if (sub.kind === 'storage') {
          const changed: Array<[string, string | null]> = [];
          if (sub.keys === null || sub.keys === undefined) for (const [k, v] of changes) changed.push([k, v]);
          else for (const k of sub.keys) if (changes.has(k)) changed.push([k, changes.get(k) ?? null]);
          if (changed.length > 0) notify(conn, id, 'storage', { block: block.hash, changes: changed });
        }
      }
    }
  };
  const onRuntime = (n: RuntimeNotification): void => {
    if (n.type === 'block') onBlock(n.block, n.changes);
    else if (n.type === 'finalized') {
      const header = headerJson(n.block);
      for (const conn of connections) for (const [id, sub] of conn.subs) if (sub.kind === 'finalizedHead') notify(conn, id, 'finalizedHead', header);
    } else {
      for (const conn of connections) {
        for (const [id, sub] of conn.subs) {
          if (sub.kind !== 'extrinsic' || sub.txHash !== n.hash) continue;
          notify(conn, id, 'extrinsic', n.status);
          if (isTerminal(n.status)) conn.subs.delete(id);
        }
      }
    }
  };
  runtime.subscribe(onRuntime);

  const produce = (count: number, advanceSeconds?: number): BlockRecord[] => runtime.produceBlocks(count, advanceSeconds === undefined ? {} : { advanceSeconds });
  const methods: Record<string, MethodDef> = createMethods(runtime, {
    newBlocks: produce,
    setStorage: (changes) => runtime.produceBlockWithStorage(changes),
  });

  // ---- subscriptions ---------------------------------------------------------------------------

  const subscribe = (conn: Connection, method: string, kind: SubscriptionKind, params: readonly unknown[]): { id: string; after: () => void } => {
    if (conn.subs.size >= maxSubs) throw new RpcError(RPC_ERROR.internal, `at most ${maxSubs} subscriptions per connection`);
    if (params.length > 1) throw new RpcError(RPC_ERROR.invalidParams, `invalid params: ${method} takes at most one parameter`);
    const id = randomBytes(8).toString('hex');
    let after: () => void;
    switch (kind) {
      case 'newHead':
      case 'allHead':
        conn.subs.set(id, { kind });
        after = () => notify(conn, id, kind, headerJson(runtime.best()));
        break;
      case 'finalizedHead':
        conn.subs.set(id, { kind });
        after = () => notify(conn, id, kind, headerJson(runtime.finalized()));
        break;
      case 'runtimeVersion':
        conn.subs.set(id, { kind });
        after = () => notify(conn, id, kind, runtime.runtimeVersionJson());
        break;
      case 'storage': {
        const raw = params[0];
        if (raw !== undefined && raw !== null && (!Array.isArray(raw) || raw.length > MAX_SUBSCRIBED_KEYS || !raw.every((k) => typeof k === 'string' && /^0x([0-9a-fA-F]{2})*$/.test(k)))) {
          throw new RpcError(RPC_ERROR.invalidParams, `invalid params: expected an array of at most ${MAX_SUBSCRIBED_KEYS} hex storage keys`);
        }
        const keys = Array.isArray(raw) && raw.length > 0 ? new Set((raw as string[]).map((k) => k.toLowerCase())) : null;
        conn.subs.set(id, { kind, keys });
        after = () => {
          if (keys === null) return;
          const best = runtime.best();
          notify(conn, id, kind, { block: best.hash, changes: [...keys].map((k) => [k, runtime.getStorage(k)]) });
        };
        break;
      }
      case 'extrinsic': {
        const hex = params[0];
        if (typeof hex !== 'string' || !/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new RpcError(RPC_ERROR.invalidParams, 'invalid params: expected extrinsic hex');
        const { hash, status } = runtime.submit(hex);
        conn.subs.set(id, { kind, txHash: hash });
        after = () => notify(conn, id, kind, status);
        break;
      }
    }
    return { id, after };
  };

  // ---- dispatch --------------------------------------------------------------------------------

  interface Reply {
    readonly response: Record<string, unknown> | null;
    readonly after?: () => void;
  }

  const handleOne = (raw: unknown, conn: Connection): Reply => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { response: { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: 'Invalid request' } } };
    }
    const req = raw as Record<string, unknown>;
    const rawId = req.id;
    const idValid = rawId === undefined || rawId === null || (typeof rawId === 'string' && rawId.length <= 256) || (typeof rawId === 'number' && Number.isFinite(rawId));
    const id: JsonRpcId = idValid && rawId !== undefined ? (rawId as JsonRpcId) : null;
    const isNotification = !Object.hasOwn(req, 'id');
    const fail = (code: number, message: string, data?: unknown): Reply => ({
      response: isNotification ? null : { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } },
    });
    if (req.jsonrpc !== '2.0' || typeof req.method !== 'string' || !idValid) return fail(RPC_ERROR.invalidRequest, 'Invalid request');
    const method = req.method;
    const params = req.params === undefined ? [] : req.params;
    if (!Array.isArray(params)) {
      return method.startsWith('dev_') && typeof params === 'object' && params !== null
        ? handleOne({ ...req, params: [params] }, conn)
        : fail(RPC_ERROR.invalidParams, 'Invalid params: expected a positional array');
    }
    try {
      if (Object.hasOwn(SUBSCRIBE, method)) {
        const { id: subId, after } = subscribe(conn, method, SUBSCRIBE[method] as SubscriptionKind, params);
        return { response: isNotification ? null : { jsonrpc: '2.0', id, result: subId }, after };
      }
      if (UNSUBSCRIBE.has(method)) {
        const subId = params[0];
        const removed = (typeof subId === 'string' || typeof subId === 'number') && conn.subs.delete(String(subId));
        return { response: isNotification ? null : { jsonrpc: '2.0', id, result: removed } };
      }
      if (method === 'rpc_methods') {
        const names = [...Object.keys(methods), ...Object.keys(SUBSCRIBE), ...UNSUBSCRIBE, 'rpc_methods'].sort();
        return { response: isNotification ? null : { jsonrpc: '2.0', id, result: { version: 1, methods: names } } };
      }
      const def = methods[method];
      if (def === undefined || !Object.hasOwn(methods, method)) {
        if (!unimplemented.has(method) && unimplemented.size < 256) {
          unimplemented.add(method);
          log(`[albedo-devnet] unimplemented RPC method called: ${method.slice(0, 80)}`);
        }
        return fail(RPC_ERROR.methodNotFound, 'Method not found');
      }
      if (params.length > def.params.length) return fail(RPC_ERROR.invalidParams, `Invalid params: ${method} takes at most ${def.params.length} parameters`);
      const args: unknown[] = [];
      for (const [i, schema] of def.params.entries()) {
        const parsed = schema.safeParse(params[i]);
        if (!parsed.success) return fail(RPC_ERROR.invalidParams, `Invalid params: parameter ${i + 1}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        args.push(parsed.data);
      }
      const result = def.run(args);
      return { response: isNotification ? null : { jsonrpc: '2.0', id, result: result === undefined ? null : result } };
    } catch (e) {
      if (e instanceof PoolError) return fail(e.code, e.rpcMessage, e.data);
      if (e instanceof RpcError) return fail(e.code, e.message, e.data);
      log(`[albedo-devnet] internal error in ${method}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return fail(RPC_ERROR.internal, 'Internal error');
    }
  };

  const handleMessage = (conn: Connection, data: RawData, isBinary: boolean): void => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    let message: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      message = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
    } catch {
      send(conn, { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.parse, message: 'Parse error' } });
      return;
    }
    if (Array.isArray(message)) {
      if (message.length === 0 || message.length > maxBatch) {
        send(conn, { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: `Invalid request: batch must hold 1..${maxBatch} requests` } });
        return;
      }
      const replies = message.map((m) => handleOne(m, conn));
      const responses = replies.map((r) => r.response).filter((r) => r !== null);
      if (responses.length > 0) send(conn, responses);
      for (const r of replies) r.after?.();
      return;
    }
    const reply = handleOne(message, conn);
    if (reply.response !== null) send(conn, reply.response);
    reply.after?.();
  };

  // ---- transport -------------------------------------------------------------------------------

  const httpServer = createServer((req, res) => {
    res.statusCode = req.url === '/' || req.url === '/health' ? 200 : 404;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`${DEVNET_LABEL}\nsubstrate JSON-RPC over WebSocket at /\n`);
  });
  httpServer.headersTimeout = 10_000;
  httpServer.requestTimeout = 10_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES, perMessageDeflate: false });
  const reject = (socket: Duplex, status: string): void => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  };
  httpServer.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    if (closed) return reject(socket, '503 Service Unavailable');
    if (options.authToken !== undefined && !bearerMatches(req.headers.authorization, options.authToken)) return reject(socket, '401 Unauthorized');
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/') return reject(socket, '404 Not Found');
    if (connections.size >= maxConnections) return reject(socket, '503 Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: Connection = { ws, subs: new Map(), alive: true };
      connections.add(conn);
      ws.on('pong', () => {
        conn.alive = true;
      });
      ws.on('message', (data, isBinary) => {
        try {
          handleMessage(conn, data, isBinary);
        } catch (e) {
          log(`[albedo-devnet] message handling failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      });
      ws.on('error', (e) => log(`[albedo-devnet] connection error: ${e.message}`));
      ws.on('close', () => {
        conn.subs.clear();
        connections.delete(conn);
      });
    });
  });
  httpServer.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, rejectListen) => {
    httpServer.once('error', rejectListen);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', rejectListen);
      resolve();
    });
  });
  httpServer.on('error', (e) => log(`[albedo-devnet] server error: ${e.message}`));
  const port = (httpServer.address() as AddressInfo).port;
  const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();

  const blockTimer =
    blockTimeMs > 0
      ? setInterval(() => {
          if (closed) return;
          try {
            produce(1);
          } catch (e) {
            log(`[albedo-devnet] block production failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
          }
        }, blockTimeMs)
      : null;

  log(`[albedo-devnet] ${DEVNET_LABEL} — listening on ${url}; best #${runtime.best().number}; beacon: ${runtime.beacon.label}${runtime.dataFile ? `; data ${runtime.dataFile}` : ''}`);

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    runtime,
    close: () => {
      closing ??= (async () => {
        closed = true;
        if (blockTimer !== null) clearInterval(blockTimer);
        clearInterval(heartbeat);
        runtime.close();
        for (const conn of connections) conn.ws.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      })();
      return closing;
    },
  };
}
