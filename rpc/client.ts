import { createTRPCClient, createWSClient, type TRPCClient, wsLink } from '@trpc/client';
import type { AppRouter } from './router.ts';

/** Reconnect backoff of the SDK: 100 ms doubling to 5 s. */
export const DEFAULT_RETRY_DELAY_MS = (attempt: number) => Math.min(100 * 2 ** attempt, 5_000);

export interface AlbedoClientOptions {
  /** `ws://127.0.0.1:8080/rpc` style URL of a backend. */
  readonly url: string;
  /** Bearer token (reader, operator, backend or node). Omit for public reads. */
  readonly token?: string;
  /**
   * WebSocket implementation. Browsers: leave unset (global WebSocket; the token travels in
   * connectionParams). Node: pass `ws`'s WebSocket and the token is also sent as an
   * Authorization header, so a wrong token is refused at the upgrade.
   */
  readonly WebSocket?: unknown;
  /** @default DEFAULT_RETRY_DELAY_MS */
  readonly retryDelayMs?: (attempt: number) => number;
  readonly onOpen?: () => void;
  readonly onClose?: (cause?: { code?: number }) => void;
}

export interface AlbedoClient {
  readonly api: TRPCClient<AppRouter>;
  close(): Promise<void>;
}

/**
 * The typed SDK: every procedure of the backend router with its inferred input and output types.
 * @example
 * const { api } = createAlbedoClient({ url, token, WebSocket: (await import('ws')).WebSocket });
 * const reign = await api.reign.query();
 * api.live.transitions.subscribe({}, { onData: (t) => console.log(t.data) });
 */
export function createAlbedoClient(options: AlbedoClientOptions): AlbedoClient {
  const token = options.token;
  let WebSocketImpl = options.WebSocket as (new (url: string, protocols?: string | string[], opts?: unknown) => WebSocket) | undefined;
  if (WebSocketImpl && token) {
    const Base = WebSocketImpl;
    // ws accepts headers as a third argument; browsers never take this path.
    WebSocketImpl = class extends (Base as new (url: string, protocols?: string | string[], opts?: unknown) => WebSocket) {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
      }
    } as never;
  }
  const wsClient = createWSClient({
    url: options.url,
    WebSocket: WebSocketImpl as typeof WebSocket | undefined,
    connectionParams: token ? { token } : undefined,
    retryDelayMs: options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
    keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 5_000 },
    onOpen: options.onOpen,
    onClose: options.onClose,
  });
  const api = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient })] });
  return { api, close: async () => wsClient.close() };
}
