/**
 * `ChainClient` over the LOCAL STAND-IN chain's `albedoDev_*` JSON-RPC (⚠ not subtensor; see
 * server.ts). Reconnects with exponential backoff, times out every request, re-sends idempotent reads
 * interrupted by a disconnect (never writes), and re-subscribes to new heads after each reconnect.
 */
import { WebSocket } from 'ws';
import { type ChainBlockRef, type ChainClient, ChainError, type RevealedCommitment, type SetWeightsRequest, type SetWeightsResult, chainFaultForDispatchError } from '../client.ts';
import {
  type DevBlockHeader,
  type DevExtrinsicStatus,
  type DevWeightsEntry,
  METHODS,
  type MethodName,
  NEW_HEAD_NOTIFICATION,
  type Params,
  RESULTS,
  RPC_ERROR,
  type Result,
  bytesToHex,
  hexToBytes,
  newHeadNotificationSchema,
} from './protocol.ts';

export interface DevChainClientOptions {
  /** Sent as `Authorization: Bearer <token>` on every (re)connect. */
  authToken?: string;
  /** Per-request timeout, including time spent waiting for a connection (default 10 s). */
  requestTimeoutMs?: number;
  /** Wall-clock budget of `setWeights` until inclusion (default 60 s) ⇒ `weight_set_timeout`. */
  inclusionTimeoutMs?: number;
  /** Blocks after the target block without inclusion ⇒ `weight_set_not_included` (default 10, chain.md §6.2). */
  notIncludedAfterBlocks?: number;
  /** Reconnect backoff (default 100 ms doubling up to 5 s, with jitter). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Largest inbound message (default 16 MiB). */
  maxPayloadBytes?: number;
  /** Diagnostic sink (default: silent). */
  log?: (line: string) => void;
}

/** The server answered with a JSON-RPC error. `runtimeError` is the stand-in's error name, if any. */
export class DevChainRpcError extends Error {
  override readonly name = 'DevChainRpcError';
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  get runtimeError(): string | null {
    const d = this.data as { error?: unknown } | undefined;
    return typeof d?.error === 'string' ? d.error : null;
  }
}

/** No (valid) answer: timeout, lost connection, closed client, or a response that breaks the protocol. */
export class DevChainTransportError extends Error {
  override readonly name = 'DevChainTransportError';
  constructor(
    readonly kind: 'timeout' | 'disconnected' | 'closed' | 'protocol',
    message: string,
  ) {
    super(message);
  }
}

interface PendingRequest {
  readonly id: number;
  readonly method: MethodName;
  readonly frame: string;
  readonly idempotent: boolean;
  sent: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type Included = Extract<DevExtrinsicStatus, { status: 'included' }>;

const FALLBACK_POLL_MS = 1000;
const HEARTBEAT_MS = 15_000;

export class DevChainClient implements ChainClient {
  readonly url: string;
  private readonly authToken: string | undefined;
  private readonly requestTimeoutMs: number;
  private readonly inclusionTimeoutMs: number;
  private readonly notIncludedAfterBlocks: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxPayloadBytes: number;
  private readonly log: (line: string) => void;

  private ws: WebSocket | null = null;
  private open = false;
  private closed = false;
  private attempt = 0;
  private opens = 0;
  private lastConnectError: string | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private latestHead: DevBlockHeader | null = null;
  private readonly headListeners = new Set<(head: DevBlockHeader) => void>();
  private readonly changeWaiters = new Set<() => void>();

  constructor(url: string, options: DevChainClientOptions = {}) {
    if (!/^wss?:\/\//.test(url)) throw new TypeError(`not a ws(s):// URL: ${url}`);
    this.url = url;
    this.authToken = options.authToken;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.inclusionTimeoutMs = options.inclusionTimeoutMs ?? 60_000;
    this.notIncludedAfterBlocks = options.notIncludedAfterBlocks ?? 10;
    this.initialDelayMs = options.reconnect?.initialDelayMs ?? 100;
    this.maxDelayMs = options.reconnect?.maxDelayMs ?? 5_000;
    this.maxPayloadBytes = options.maxPayloadBytes ?? 16 * 1024 * 1024;
    this.log = options.log ?? (() => undefined);
    this.connect();
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.open;
  }

  /** Number of successful connections so far (1 + reconnects). */
  get connectionCount(): number {
    return this.opens;
  }

  /** Resolves once connected (or rejects after `timeoutMs`). Calls do not need this; they wait themselves. */
  async ready(timeoutMs = this.requestTimeoutMs): Promise<void> {
    await this.call(METHODS.bestBlock, {}, { timeoutMs });
  }

  /** Listens to new heads (delivered while connected; heads produced during a disconnect are skipped). */
  onNewHead(listener: (head: DevBlockHeader) => void): () => void {
    this.headListeners.add(listener);
    return () => this.headListeners.delete(listener);
  }

  // ---- ChainClient ----------------------------------------------------------------------------------

  async bestBlock(): Promise<ChainBlockRef> {
    return this.call(METHODS.bestBlock, {});
  }

  async revealedCommitments(netuid: number, atBlock?: number): Promise<RevealedCommitment[]> {
    const entries = await this.call(METHODS.revealedCommitments, atBlock === undefined ? { netuid } : { netuid, atBlock });
    return entries.map((e) => ({ hotkey: e.hotkey, block: e.block, blockHash: e.blockHash, bytes: hexToBytes(e.dataHex) }));
  }

  async uidOf(netuid: number, hotkey: string): Promise<number | null> {
    return this.call(METHODS.uidOf, { netuid, hotkey });
  }

  async hotkeyOf(netuid: number, uid: number): Promise<string | null> {
    return this.call(METHODS.hotkeyOf, { netuid, uid });
  }

  async lastWeightsSetBlock(netuid: number, hotkey: string): Promise<number | null> {
    return this.call(METHODS.lastWeightsSetBlock, { netuid, hotkey });
  }

  async setWeights(request: SetWeightsRequest): Promise<SetWeightsResult> {
    const deadline = Date.now() + this.inclusionTimeoutMs;
    const { netuid, signer, uids, weights, versionKey } = request;
    const u16 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 65535;
    if (uids.length === 0 || uids.length !== weights.length || !uids.every(u16) || !weights.every(u16) || !Number.isSafeInteger(versionKey) || versionKey < 0) {
      throw new ChainError('weight_set_rejected', 'invalid weight payload: need equal-length non-empty u16 uids and weights and a u64 version key');
    }
    let uid: number | null;
    try {
      uid = await this.uidOf(netuid, signer);
    } catch (e) {
      throw new ChainError('weight_set_exception', `could not read the validator uid: ${errorText(e)}`, null, { cause: e });
    }
    if (uid === null) throw new ChainError('weight_set_rejected', `validator hotkey ${signer} is not registered on netuid ${netuid}`);

    let submitted: Result<typeof METHODS.setWeights>;
    try {
      submitted = await this.call(
        METHODS.setWeights,
        { netuid, hotkey: signer, uids: [...uids], weights: [...weights], versionKey },
        { idempotent: false, timeoutMs: Math.max(1, Math.min(this.requestTimeoutMs, deadline - Date.now())) },
      );
    } catch (e) {
      if (e instanceof DevChainRpcError && e.code === RPC_ERROR.rejected) {
        const name = e.runtimeError ?? 'Unknown';
        throw new ChainError(chainFaultForDispatchError(name), `${name}: ${e.message}`, null, { cause: e });
      }
      if (e instanceof DevChainTransportError && e.kind === 'timeout') {
        throw new ChainError('weight_set_timeout', `submission timed out; the extrinsic may still land — check lastWeightsSetBlock before retrying`, null, { cause: e });
      }
      throw new ChainError('weight_set_exception', `submission failed (outcome unknown; check lastWeightsSetBlock before retrying): ${errorText(e)}`, null, { cause: e });
    }

    const hash = submitted.extrinsicHash;
    const outcome = await this.awaitInclusion(hash, submitted.queuedForBlock, deadline);
    if (outcome.kind === 'timeout') {
      throw new ChainError('weight_set_timeout', `extrinsic ${hash} not included within ${this.inclusionTimeoutMs} ms (it may still land)`, hash);
    }
    if (outcome.kind === 'dropped') throw new ChainError('weight_set_not_included', `extrinsic ${hash} was ${outcome.reason}`, hash);
    if (outcome.kind === 'closed') throw new ChainError('weight_set_exception', 'client closed while waiting for inclusion', hash);
    const inc = outcome.status;
    if (!inc.success) {
      const name = inc.error ?? 'Unknown';
      throw new ChainError(chainFaultForDispatchError(name), `extrinsic ${hash} failed in block ${inc.block}: ${name}`, hash);
    }
    return { extrinsicHash: hash, includedInBlock: inc.block };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    for (const p of [...this.pending.values()]) this.settle(p.id, new DevChainTransportError('closed', 'client closed'));
    this.wakeWaiters();
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    if (ws !== null) {
      await new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.terminate();
      });
    }
  }

  // ---- stand-in extras (tests, demo, miner helpers) -------------------------------------------------

  info(): Promise<Result<typeof METHODS.info>> {
    return this.call(METHODS.info, {});
  }

  blockHash(number: number): Promise<string | null> {
    return this.call(METHODS.blockHash, { number });
  }

  /** Registers immediately (stand-in shortcut). Not re-sent after a disconnect. */
  register(netuid: number, hotkey: string, replaceUid?: number): Promise<Result<typeof METHODS.register>> {
    return this.call(METHODS.register, replaceUid === undefined ? { netuid, hotkey } : { netuid, hotkey, replaceUid }, { idempotent: false });
  }

  /** Queues a commitment for the next block. */
  commit(params: Params<typeof METHODS.commit>): Promise<Result<typeof METHODS.commit>> {
    return this.call(METHODS.commit, params, { idempotent: false });
  }

  extrinsicStatus(hash: string): Promise<DevExtrinsicStatus> {
    return this.call(METHODS.extrinsicStatus, { hash });
  }

  weights(netuid: number): Promise<DevWeightsEntry[]> {
    return this.call(METHODS.weights, { netuid });
  }

  produceBlock(count?: number): Promise<DevBlockHeader> {
    return this.call(METHODS.produceBlock, count === undefined ? {} : { count }, { idempotent: false });
  }

  /** Waits until `hash` is included (any dispatch result); throws a transport timeout otherwise. */
  async waitForExtrinsic(hash: string, queuedForBlock: number, timeoutMs = this.inclusionTimeoutMs): Promise<Included> {
    const outcome = await this.awaitInclusion(hash, queuedForBlock, Date.now() + timeoutMs);
    if (outcome.kind === 'included') return outcome.status;
    if (outcome.kind === 'dropped') throw new DevChainTransportError('protocol', `extrinsic ${hash} was ${outcome.reason}`);
    throw new DevChainTransportError(outcome.kind === 'closed' ? 'closed' : 'timeout', `extrinsic ${hash} not included`);
  }

  /** Typed JSON-RPC call. Reads are idempotent by default and survive a reconnect. */
  call<M extends MethodName>(method: M, params: Params<M>, options: { idempotent?: boolean; timeoutMs?: number } = {}): Promise<Result<M>> {
    if (this.closed) return Promise.reject(new DevChainTransportError('closed', 'client closed'));
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<Result<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        const why = this.open ? 'no response' : `not connected${this.lastConnectError ? `: ${this.lastConnectError}` : ''}`;
        this.settle(id, new DevChainTransportError('timeout', `${method} timed out after ${timeoutMs} ms (${why})`));
        if (this.open) this.probeConnection();
      }, timeoutMs);
      const request: PendingRequest = {
        id,
        method,
        frame: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
        idempotent: options.idempotent ?? true,
        sent: false,
        resolve: (value) => {
          const parsed = RESULTS[method].safeParse(value);
          if (parsed.success) resolve(parsed.data as Result<M>);
          else reject(new DevChainTransportError('protocol', `${method}: unexpected result shape`));
        },
        reject,
        timer,
      };
      this.pending.set(id, request);
      this.flush();
    });
  }

  // ---- internals -----------------------------------------------------------------------------------

  private async awaitInclusion(
    hash: string,
    queuedForBlock: number,
    deadline: number,
  ): Promise<{ kind: 'included'; status: Included } | { kind: 'timeout' } | { kind: 'closed' } | { kind: 'dropped'; reason: string }> {
    const lastBlock = queuedForBlock + this.notIncludedAfterBlocks - 1;
    for (;;) {
      if (this.closed) return { kind: 'closed' };
      const remaining = deadline - Date.now();
      if (remaining <= 0) return { kind: 'timeout' };
      // Arm the wake-up before querying so a head that arrives meanwhile is not missed.
      const change = this.nextChange(Math.min(remaining, FALLBACK_POLL_MS));
      let status: DevExtrinsicStatus | null = null;
      try {
        status = await this.call(METHODS.extrinsicStatus, { hash }, { timeoutMs: Math.max(1, Math.min(remaining, this.requestTimeoutMs)) });
      } catch (e) {
        this.log(`[albedo-devnet client] status query failed (will retry): ${errorText(e)}`);
      }
      if (status?.status === 'included') {
        change.cancel();
        return { kind: 'included', status };
      }
      if (status?.status === 'unknown') {
        change.cancel();
        return { kind: 'dropped', reason: 'dropped from the pool (unknown to the chain)' };
      }
      if (status?.status === 'pending' && this.latestHead !== null && this.latestHead.number >= lastBlock) {
        change.cancel();
        return { kind: 'dropped', reason: `not included by block ${lastBlock}` };
      }
      await change.promise;
    }
  }

  /** Resolves at the next head, (re)connection, close, or after `ms`. */
  private nextChange(ms: number): { promise: Promise<void>; cancel: () => void } {
    let done: () => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const promise = new Promise<void>((resolve) => {
      done = () => {
        clearTimeout(timer);
        this.changeWaiters.delete(done);
        resolve();
      };
      timer = setTimeout(done, ms);
      this.changeWaiters.add(done);
    });
    return { promise, cancel: done };
  }

  private wakeWaiters(): void {
    for (const w of [...this.changeWaiters]) w();
  }

  private connect(): void {
    if (this.closed) return;
    const headers: Record<string, string> = {};
    if (this.authToken !== undefined) headers.authorization = `Bearer ${this.authToken}`;
    const ws = new WebSocket(this.url, { headers, maxPayload: this.maxPayloadBytes, perMessageDeflate: false, handshakeTimeout: this.requestTimeoutMs });
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.attempt = 0;
      this.opens += 1;
      this.lastConnectError = null;
      this.startHeartbeat(ws);
      this.subscribeHeads();
      this.flush();
      this.wakeWaiters();
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws || isBinary) return;
      this.onMessage(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'));
    });
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('error', (e) => {
      this.lastConnectError = e.message;
    });
    ws.on('close', () => {
      if (this.ws !== ws) return;
      const wasOpen = this.open;
      this.open = false;
      this.ws = null;
      this.stopHeartbeat();
      for (const p of [...this.pending.values()]) {
        if (!p.sent) continue;
        if (p.idempotent) p.sent = false; // re-sent after reconnect
        else this.settle(p.id, new DevChainTransportError('disconnected', `${p.method}: connection lost before a response (outcome unknown)`));
      }
      if (wasOpen) this.log(`[albedo-devnet client] disconnected from ${this.url}; reconnecting`);
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== null) return;
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private startHeartbeat(ws: WebSocket): void {
    this.stopHeartbeat();
    this.awaitingPong = false;
    this.heartbeatTimer = setInterval(() => {
      if (this.awaitingPong) {
        this.log('[albedo-devnet client] heartbeat lost; reconnecting');
        ws.terminate();
        return;
      }
      this.awaitingPong = true;
      ws.ping();
    }, HEARTBEAT_MS);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /** After a timeout on an open connection: ping, and drop the connection if no pong follows. */
  private probeConnection(): void {
    const ws = this.ws;
    if (ws === null || this.awaitingPong) return;
    this.awaitingPong = true;
    ws.ping();
    const t = setTimeout(() => {
      if (this.ws === ws && this.awaitingPong) ws.terminate();
    }, 5_000);
    t.unref();
  }

  private subscribeHeads(): void {
    this.call(METHODS.subscribeNewHeads, {}, { idempotent: false }).catch((e: unknown) => this.log(`[albedo-devnet client] head subscription failed: ${errorText(e)}`));
  }

  private flush(): void {
    const ws = this.ws;
    if (!this.open || ws === null) return;
    for (const p of this.pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      ws.send(p.frame);
    }
  }

  private settle(id: number, outcome: Error | { result: unknown }): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome.result);
  }

  private onMessage(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.log('[albedo-devnet client] ignoring a non-JSON message');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return;
    const m = msg as { id?: unknown; method?: unknown; result?: unknown; error?: unknown };
    if (m.method === NEW_HEAD_NOTIFICATION) {
      const n = newHeadNotificationSchema.safeParse(msg);
      // Only this connection's own subscription can notify it; a head may arrive just before the
      // subscribe response, so the id is not compared (that head would otherwise be lost).
      if (!n.success) return;
      const head = n.data.params.result;
      if (this.latestHead === null || head.number >= this.latestHead.number) this.latestHead = head;
      for (const l of this.headListeners) {
        try {
          l(head);
        } catch (e) {
          this.log(`[albedo-devnet client] head listener threw: ${errorText(e)}`);
        }
      }
      this.wakeWaiters();
      return;
    }
    if (typeof m.id !== 'number') return;
    if (m.error !== undefined) {
      const err = m.error as { code?: unknown; message?: unknown; data?: unknown };
      const code = typeof err.code === 'number' ? err.code : RPC_ERROR.internal;
      const message = typeof err.message === 'string' ? err.message : 'error';
      this.settle(m.id, new DevChainRpcError(code, message, err.data));
      return;
    }
    this.settle(m.id, { result: m.result });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export interface DevChainMiner {
  readonly client: DevChainClient;
  readonly netuid: number;
  register(hotkey: string, options?: { replaceUid?: number }): Promise<{ uid: number; registrationBlock: number; alreadyRegistered: boolean }>;
  /** Commits a reveal string (stored as a SCALE string); revealed at `revealAtBlock` or its inclusion block. */
  commit(hotkey: string, reveal: string, revealAtBlock?: number): Promise<{ extrinsicHash: string; queuedForBlock: number }>;
  /** Commits exact bytes (for malformed-reveal tests). */
  commitBytes(hotkey: string, bytes: Uint8Array, revealAtBlock?: number): Promise<{ extrinsicHash: string; queuedForBlock: number }>;
  close(): Promise<void>;
}

/**
 * Miner-side helpers against the stand-in chain, for tests and the demo.
 * @example const miner = devChainMiner(chain.url); await miner.register('miner-1'); await miner.commit('miner-1', 'v7|ns/x|' + 'a'.repeat(40));
 */
export function devChainMiner(url: string, options: DevChainClientOptions & { netuid?: number } = {}): DevChainMiner {
  const client = new DevChainClient(url, options);
  const netuid = options.netuid ?? 97;
  const withReveal = (revealAtBlock: number | undefined) => (revealAtBlock === undefined ? {} : { revealAtBlock });
  return {
    client,
    netuid,
    register: (hotkey, o) => client.register(netuid, hotkey, o?.replaceUid),
    commit: (hotkey, reveal, revealAtBlock) => client.commit({ netuid, hotkey, reveal, ...withReveal(revealAtBlock) }),
    commitBytes: (hotkey, bytes, revealAtBlock) => client.commit({ netuid, hotkey, dataHex: bytesToHex(bytes), ...withReveal(revealAtBlock) }),
    close: () => client.close(),
  };
}
