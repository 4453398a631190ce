/**
 * ⚠ LOCAL STAND-IN CHAIN — NOT SUBTENSOR. ⚠
 *
 * A small JSON-RPC 2.0 over WebSocket server (`albedoDev_*` methods, see protocol.ts) that plays the
 * chain for `npm start --local-devnet` and tests: sha256-chained blocks on a timer or on demand,
 * registrations per netuid, commitments revealed raw (no timelock, no drand), weight sets included
 * in the next block with a per-hotkey rate limit, new-head subscriptions, optional JSON persistence.
 * It does not speak substrate RPC and `@polkadot/api` cannot connect to it; the metadata-accurate
 * subtensor path (spec/chain.md) is a separate, later component behind the same `ChainClient`.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import {
  type DevBlockHeader,
  type DevBlockRef,
  METHODS,
  type MethodName,
  NEW_HEAD_NOTIFICATION,
  PARAMS,
  RPC_ERROR,
  STANDIN_LABEL,
} from './protocol.ts';
import { type DevChainConfig, DevChainState, DevRuntimeError, UnknownBlockError, persistedStateSchema } from './state.ts';

export interface DevChainOptions {
  /** Listen address (default `127.0.0.1`; the stand-in is meant for loopback only). */
  host?: string;
  /** Listen port (default 0 = ephemeral). */
  port?: number;
  /** Block interval in ms (default 1000). 0 = blocks only on demand (`produceBlock`). */
  blockTimeMs?: number;
  /** JSON file that keeps chain state across restarts (written atomically). */
  dataFile?: string;
  /** If set, the WebSocket upgrade must carry `Authorization: Bearer <token>`. */
  authToken?: string;
  /** `WeightsSetRateLimit`: a hotkey may set weights at block b only if b − last > limit (default 100). */
  weightsRateLimitBlocks?: number;
  /** `WeightsVersionKey`: weight sets with a smaller version key are rejected when > 0 (default 0). */
  weightsVersionKey?: number;
  /** Largest inbound WebSocket message in bytes (default 1 MiB). */
  maxPayloadBytes?: number;
  /** Concurrent connections (default 64). */
  maxConnections?: number;
  /** Largest JSON-RPC batch (default 32). */
  maxBatch?: number;
  /** Headers kept for `albedoDev_blockHash` (default 4096). */
  retainBlocks?: number;
  /** Diagnostic sink; default writes to stderr. Pass `() => {}` to silence. */
  log?: (line: string) => void;
}

export interface DevChain {
  /** `ws://host:port` */
  readonly url: string;
  readonly port: number;
  /** Produces one block now (in addition to any timer) and returns its header. */
  produceBlock(): Promise<DevBlockHeader>;
  /** Produces `count` blocks and returns the last header. */
  produceBlocks(count: number): Promise<DevBlockHeader>;
  bestBlock(): DevBlockRef;
  /** Extrinsics waiting for the next block. */
  pendingExtrinsics(): number;
  /** Resolves once at least `count` extrinsics wait in the pool (tests: submit, then produce a block). */
  whenPending(count?: number): Promise<void>;
  /** Stops the timer, disconnects clients, closes the listener and flushes persistence. Idempotent. */
  close(): Promise<void>;
}

type JsonRpcId = string | number | null;
interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

const MAX_SUBSCRIPTIONS_PER_CONNECTION = 16;
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const HEARTBEAT_MS = 30_000;
const LAZY_PERSIST_MS = 2_000;

interface Connection {
  readonly ws: WebSocket;
  readonly subscriptions: Set<string>;
  alive: boolean;
}

function tokenMatches(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length), 'utf8');
  const expected = Buffer.from(token, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function loadState(dataFile: string | undefined, config: Partial<DevChainConfig>): Promise<DevChainState> {
  if (dataFile === undefined) return new DevChainState(config);
  let text: string;
  try {
    text = await readFile(dataFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new DevChainState(config);
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`stand-in chain data file ${dataFile} is not JSON (refusing to start over it): ${String(e)}`);
  }
  const parsed = persistedStateSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`stand-in chain data file ${dataFile} is invalid (refusing to start over it): ${z.prettifyError(parsed.error).slice(0, 500)}`);
  }
  return new DevChainState(config, parsed.data);
}

/**
 * Starts the LOCAL STAND-IN chain. Resolves once it listens.
 * @example const chain = await startDevChain({ blockTimeMs: 0 }); await chain.produceBlock();
 */
export async function startDevChain(options: DevChainOptions = {}): Promise<DevChain> {
  const host = options.host ?? '127.0.0.1';
  const blockTimeMs = options.blockTimeMs ?? 1000;
  const maxBatch = options.maxBatch ?? 32;
  const maxConnections = options.maxConnections ?? 64;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataFile = options.dataFile;
  if (!Number.isInteger(blockTimeMs) || blockTimeMs < 0) throw new RangeError(`blockTimeMs must be a non-negative integer: ${blockTimeMs}`);

  const config: Partial<DevChainConfig> = {};
  if (options.weightsRateLimitBlocks !== undefined) config.weightsSetRateLimit = options.weightsRateLimitBlocks;
  if (options.weightsVersionKey !== undefined) config.weightsVersionKey = options.weightsVersionKey;
  if (options.retainBlocks !== undefined) config.retainBlocks = options.retainBlocks;
  const state = await loadState(dataFile, config);

  // Every RPC handler, block and persistence write runs through this queue: one total order.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => T | Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  let closed = false;
  let lazyPersistTimer: NodeJS.Timeout | null = null;
  const persistNow = async (): Promise<void> => {
    if (dataFile === undefined) return;
    if (lazyPersistTimer !== null) {
      clearTimeout(lazyPersistTimer);
      lazyPersistTimer = null;
    }
    await mkdir(dirname(dataFile), { recursive: true });
    const tmp = `${dataFile}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(state.toJSON())}\n`, 'utf8');
    await rename(tmp, dataFile);
  };
  const persistLazily = (): void => {
    if (dataFile === undefined || lazyPersistTimer !== null || closed) return;
    lazyPersistTimer = setTimeout(() => {
      lazyPersistTimer = null;
      serial(persistNow).catch((e: unknown) => log(`[albedo-devnet] persist failed: ${String(e)}`));
    }, LAZY_PERSIST_MS);
    lazyPersistTimer.unref();
  };

  const poolWaiters = new Set<{ count: number; resolve: () => void }>();
  const notifyPool = (): void => {
    for (const w of [...poolWaiters]) {
      if (state.poolSize() >= w.count) {
        poolWaiters.delete(w);
        w.resolve();
      }
    }
  };

  const connections = new Set<Connection>();
  const send = (conn: Connection, message: unknown): void => {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    if (conn.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      log('[albedo-devnet] dropping a client that does not read its messages');
      conn.ws.terminate();
      return;
    }
    conn.ws.send(JSON.stringify(message));
  };

  const produceOne = async (): Promise<DevBlockHeader> => {
    const { header, changedState } = state.produceBlock();
    if (changedState) await persistNow();
    else persistLazily();
    for (const conn of connections) {
      for (const sub of conn.subscriptions) send(conn, { jsonrpc: '2.0', method: NEW_HEAD_NOTIFICATION, params: { subscription: sub, result: header } });
    }
    return header;
  };
  const produceBlocks = (count: number): Promise<DevBlockHeader> =>
    serial(async () => {
      let last: DevBlockHeader | undefined;
      for (let i = 0; i < count; i++) last = await produceOne();
      if (last === undefined) throw new RangeError('count must be ≥ 1');
      return last;
    });

  // ---- JSON-RPC --------------------------------------------------------------------------------

  const handlers: { [M in MethodName]: (params: z.infer<(typeof PARAMS)[M]>, conn: Connection) => unknown } = {
    [METHODS.info]: () => ({
      standIn: true,
      label: STANDIN_LABEL,
      best: state.bestBlock(),
      genesisHash: DevChainState.genesisHash(),
      weightsSetRateLimit: state.settings.weightsSetRateLimit,
      weightsVersionKey: state.settings.weightsVersionKey,
      netuids: state.netuids(),
    }),
    [METHODS.bestBlock]: () => state.bestBlock(),
    [METHODS.blockHash]: (p) => state.blockHash(p.number),
    [METHODS.register]: async (p) => {
      const r = state.register(p.netuid, p.hotkey, p.replaceUid);
      if (!r.alreadyRegistered) await persistNow();
      return r;
    },
    [METHODS.uidOf]: (p) => state.uidOf(p.netuid, p.hotkey),
    [METHODS.hotkeyOf]: (p) => state.hotkeyOf(p.netuid, p.uid),
    [METHODS.commit]: (p) => {
      const r = state.submitCommit(p);
      notifyPool();
      return r;
    },
    [METHODS.revealedCommitments]: (p) => state.revealedCommitments(p.netuid, p.atBlock),
    [METHODS.setWeights]: (p) => {
      const r = state.submitWeights(p);
      notifyPool();
      return r;
    },
    [METHODS.extrinsicStatus]: (p) => state.extrinsicStatus(p.hash),
    [METHODS.weights]: (p) => state.weights(p.netuid),
    [METHODS.lastWeightsSetBlock]: (p) => state.lastWeightsSetBlock(p.netuid, p.hotkey),
    [METHODS.produceBlock]: async (p) => {
      let last: DevBlockHeader | undefined;
      for (let i = 0; i < (p.count ?? 1); i++) last = await produceOne();
      return last;
    },
    [METHODS.subscribeNewHeads]: (_p, conn) => {
      if (conn.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
        throw new RpcFailure(RPC_ERROR.tooManySubscriptions, `at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection`);
      }
      const id = randomUUID();
      conn.subscriptions.add(id);
      return id;
    },
    [METHODS.unsubscribeNewHeads]: (p, conn) => conn.subscriptions.delete(p.subscription),
  };

  const isMethod = (m: string): m is MethodName => Object.hasOwn(PARAMS, m);

  const handleOne = async (raw: unknown, conn: Connection): Promise<JsonRpcResponse | null> => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: 'request must be a JSON object' } };
    }
    const req = raw as Record<string, unknown>;
    const rawId = req.id;
    const idValid = rawId === undefined || rawId === null || typeof rawId === 'string' || (typeof rawId === 'number' && Number.isFinite(rawId));
    const id: JsonRpcId = idValid && rawId !== undefined ? (rawId as JsonRpcId) : null;
    const isNotification = !Object.hasOwn(req, 'id');
    const fail = (code: number, message: string, data?: unknown): JsonRpcResponse => ({
      jsonrpc: '2.0',
      id,
      error: data === undefined ? { code, message } : { code, message, data },
    });
    if (req.jsonrpc !== '2.0' || typeof req.method !== 'string' || !idValid || (typeof rawId === 'string' && rawId.length > 256)) {
      return fail(RPC_ERROR.invalidRequest, 'invalid JSON-RPC 2.0 request');
    }
    const method = req.method;
    if (!isMethod(method)) return isNotification ? null : fail(RPC_ERROR.methodNotFound, `method not found: ${method.slice(0, 80)}`);
    let params: unknown = req.params ?? {};
    if (Array.isArray(params)) {
      if (params.length === 0) params = {};
      else if (params.length === 1 && typeof params[0] === 'object' && params[0] !== null && !Array.isArray(params[0])) params = params[0];
      else return fail(RPC_ERROR.invalidParams, 'params must be an object (or a one-element array holding one)');
    }
    const parsed = PARAMS[method].safeParse(params);
    if (!parsed.success) return fail(RPC_ERROR.invalidParams, 'invalid params', z.prettifyError(parsed.error).slice(0, 2000));
    try {
      const handler = handlers[method] as (p: unknown, c: Connection) => unknown;
      const result = await serial(() => handler(parsed.data, conn));
      return isNotification ? null : { jsonrpc: '2.0', id, result: result ?? null };
    } catch (e) {
      if (isNotification) return null;
      if (e instanceof DevRuntimeError) return fail(RPC_ERROR.rejected, e.message, { error: e.error });
      if (e instanceof UnknownBlockError) return fail(RPC_ERROR.unknownBlock, e.message);
      if (e instanceof RpcFailure) return fail(e.code, e.message, e.data);
      log(`[albedo-devnet] internal error in ${method}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return fail(RPC_ERROR.internal, 'internal error');
    }
  };

  const handleMessage = async (conn: Connection, data: RawData, isBinary: boolean): Promise<void> => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    let message: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      message = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
    } catch {
      send(conn, { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.parse, message: 'parse error: expected a UTF-8 JSON text frame' } });
      return;
    }
    if (Array.isArray(message)) {
      if (message.length === 0 || message.length > maxBatch) {
        send(conn, { jsonrpc: '2.0', id: null, error: { code: RPC_ERROR.invalidRequest, message: `batch must hold 1..${maxBatch} requests` } });
        return;
      }
      const responses = (await Promise.all(message.map((m) => handleOne(m, conn)))).filter((r): r is JsonRpcResponse => r !== null);
      if (responses.length > 0) send(conn, responses);
      return;
    }
    const response = await handleOne(message, conn);
    if (response !== null) send(conn, response);
  };

  // ---- transport -------------------------------------------------------------------------------

  const httpServer = createServer((req, res) => {
    res.statusCode = req.url === '/' || req.url === '/health' ? 200 : 404;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`${STANDIN_LABEL}\nJSON-RPC 2.0 over WebSocket; methods albedoDev_*\n`);
  });
  httpServer.headersTimeout = 10_000;
  httpServer.requestTimeout = 10_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes ?? 1024 * 1024, perMessageDeflate: false });

  const reject = (socket: import('node:stream').Duplex, status: string): void => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  };
  httpServer.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    if (closed) return reject(socket, '503 Service Unavailable');
    if (options.authToken !== undefined && !tokenMatches(req, options.authToken)) return reject(socket, '401 Unauthorized');
    if (connections.size >= maxConnections) return reject(socket, '503 Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: Connection = { ws, subscriptions: new Set(), alive: true };
      connections.add(conn);
      ws.on('pong', () => {
        conn.alive = true;
      });
      ws.on('message', (data, isBinary) => {
        handleMessage(conn, data, isBinary).catch((e: unknown) => log(`[albedo-devnet] message handling failed: ${String(e)}`));
      });
      ws.on('error', (e) => log(`[albedo-devnet] connection error: ${e.message}`));
      ws.on('close', () => connections.delete(conn));
    });
  });
  httpServer.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', reject);
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

  let timerBusy = false;
  const blockTimer =
    blockTimeMs > 0
      ? setInterval(() => {
          if (timerBusy || closed) return;
          timerBusy = true;
          produceBlocks(1)
            .catch((e: unknown) => log(`[albedo-devnet] block production failed: ${String(e)}`))
            .finally(() => {
              timerBusy = false;
            });
        }, blockTimeMs)
      : null;

  log(`[albedo-devnet] ${STANDIN_LABEL} — listening on ${url} (best block #${state.bestBlock().number}${dataFile ? `, data ${dataFile}` : ''})`);

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    produceBlock: () => produceBlocks(1),
    produceBlocks: (count: number) => {
      if (!Number.isInteger(count) || count < 1) return Promise.reject(new RangeError(`count must be a positive integer: ${count}`));
      return produceBlocks(count);
    },
    bestBlock: () => state.bestBlock(),
    pendingExtrinsics: () => state.poolSize(),
    whenPending: (count = 1) =>
      new Promise<void>((resolve) => {
        poolWaiters.add({ count, resolve });
        notifyPool();
      }),
    close: () => {
      closing ??= (async () => {
        closed = true;
        if (blockTimer !== null) clearInterval(blockTimer);
        clearInterval(heartbeat);
        for (const conn of connections) conn.ws.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
        await serial(persistNow);
      })();
      return closing;
    },
  };
}
