/**
 * Typed client for the `dev_*` admin methods of the LOCAL STAND-IN dev chain node (rpc-node.ts): produce
 * blocks / advance chain time (`dev_newBlock`), raw storage writes (`dev_setStorage`) and status
 * (`dev_info`). Works over any JSON-RPC sender — `@polkadot/api`'s `WsProvider` (`provider.send`) or the
 * small raw-WebSocket sender here — so tests and the CLI need no `ApiPromise`.
 */
import { WebSocket } from 'ws';
import { z } from 'zod';

/** Anything that can send a JSON-RPC request (`WsProvider` satisfies it). */
export interface RpcSender {
  send(method: string, params: unknown[]): Promise<unknown>;
}

export type DevnetAdminErrorCode = 'rpc' | 'transport' | 'bad_response' | 'timeout';

export class DevnetAdminError extends Error {
  override readonly name = 'DevnetAdminError';
  readonly code: DevnetAdminErrorCode;
  /** JSON-RPC error code when `code === 'rpc'`. */
  readonly rpcCode: number | undefined;

  constructor(code: DevnetAdminErrorCode, message: string, rpcCode?: number) {
    super(message);
    this.code = code;
    this.rpcCode = rpcCode;
  }
}

const hash = z.string().regex(/^0x[0-9a-f]{64}$/);
const blockRef = z.object({ number: z.number().int().nonnegative(), hash });

const newBlockResult = z.object({
  hash,
  number: z.number().int().nonnegative(),
  blocks: z.array(hash),
  finalized: hash,
  chainTimeMs: z.number(),
});
export type NewBlockResult = z.infer<typeof newBlockResult>;

const devInfo = z.object({
  standIn: z.literal(true),
  label: z.string(),
  name: z.string(),
  chain: z.string(),
  specVersion: z.number().int(),
  genesisHash: hash,
  best: blockRef,
  finalized: blockRef,
  chainTimeMs: z.number(),
  oldestStateBlock: z.number().int(),
  pendingExtrinsics: z.number().int(),
  beacon: z.object({
    kind: z.enum(['local', 'recorded-quicknet']),
    label: z.string(),
    publicKey: z.string().regex(/^0x[0-9a-f]{192}$/),
    genesisTime: z.number().int(),
    period: z.number().int(),
    lastStoredRound: z.number().int().nonnegative(),
  }),
});
export type DevInfo = z.infer<typeof devInfo>;

function parse<T>(schema: z.ZodType<T>, value: unknown, method: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new DevnetAdminError('bad_response', `${method}: unexpected response: ${z.prettifyError(parsed.error).slice(0, 300)}`);
  return parsed.data;
}

export class DevnetAdmin {
  readonly #sender: RpcSender;

  constructor(sender: RpcSender) {
    this.#sender = sender;
  }

  async #call(method: string, params: unknown[]): Promise<unknown> {
    try {
      return await this.#sender.send(method, params);
    } catch (e) {
      if (e instanceof DevnetAdminError) throw e;
      const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'number' ? e.code : undefined;
      throw new DevnetAdminError(code === undefined ? 'transport' : 'rpc', `${method} failed: ${e instanceof Error ? e.message : String(e)}`, code);
    }
  }

  /** Produces `count` blocks (default 1) after advancing chain time by `advanceSeconds`. */
  async newBlock(options: { count?: number; advanceSeconds?: number } = {}): Promise<NewBlockResult> {
    return parse(newBlockResult, await this.#call('dev_newBlock', [options]), 'dev_newBlock');
  }

  /** Produces one block that applies raw SCALE key/value writes (`null` deletes). */
  async setStorage(changes: ReadonlyArray<readonly [string, string | null]>): Promise<{ hash: string; number: number }> {
    return parse(blockRef, await this.#call('dev_setStorage', [changes]), 'dev_setStorage');
  }

  async info(): Promise<DevInfo> {
    return parse(devInfo, await this.#call('dev_info', []), 'dev_info');
  }
}

/** Default time a raw request may take before it fails. */
export const DEFAULT_ADMIN_TIMEOUT_MS = 30_000;

/** A minimal JSON-RPC-over-WebSocket sender (no subscriptions), with an optional bearer token. */
export class RawWsSender implements RpcSender {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #timeoutMs: number;
  #nextId = 1;

  private constructor(ws: WebSocket, timeoutMs: number) {
    this.#ws = ws;
    this.#timeoutMs = timeoutMs;
    ws.on('message', (data) => this.#onMessage(data.toString()));
    ws.on('close', () => this.#failAll(new DevnetAdminError('transport', 'connection closed')));
  }

  static connect(url: string, options: { token?: string; timeoutMs?: number } = {}): Promise<RawWsSender> {
    const headers = options.token === undefined ? undefined : { Authorization: `Bearer ${options.token}` };
    const ws = new WebSocket(url, { headers, maxPayload: 64 * 1024 * 1024 });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWsSender(ws, options.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS)));
      ws.once('error', (e) => reject(new DevnetAdminError('transport', `cannot connect to ${url}: ${e.message}`)));
      ws.once('unexpected-response', (_req, res) => {
        reject(new DevnetAdminError('transport', `cannot connect to ${url}: HTTP ${res.statusCode}`));
        ws.terminate();
      });
    });
  }

  send(method: string, params: unknown[]): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new DevnetAdminError('timeout', `${method}: no response within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  #onMessage(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null || !('id' in msg) || typeof msg.id !== 'number') return;
    const waiter = this.#pending.get(msg.id);
    if (waiter === undefined) return;
    this.#pending.delete(msg.id);
    clearTimeout(waiter.timer);
    if ('error' in msg && typeof msg.error === 'object' && msg.error !== null) {
      const err = msg.error as { code?: unknown; message?: unknown };
      waiter.reject(new DevnetAdminError('rpc', String(err.message ?? 'error'), typeof err.code === 'number' ? err.code : undefined));
    } else {
      waiter.resolve('result' in msg ? msg.result : null);
    }
  }

  #failAll(error: Error): void {
    for (const [id, waiter] of this.#pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this.#pending.delete(id);
    }
  }

  close(): void {
    this.#ws.close();
  }
}
