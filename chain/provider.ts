/**
 * Network presets and the WebSocket provider with reconnect backoff (spec/chain.md, endpoints).
 *
 * `WsProvider`'s own auto-connect retries at a fixed interval forever; against a public endpoint that
 * rate-limits or is down for minutes that is a reconnect storm. We disable it and reconnect with
 * exponential backoff and jitter instead; `WsProvider` itself re-subscribes live subscriptions on every
 * socket open, so ApiPromise and the reader's storage subscriptions survive a dropped socket.
 */
import { WsProvider } from '@polkadot/api';

/** spec/chain.md "Endpoints". Any other `ws://` / `wss://` URL is accepted verbatim. */
export const NETWORK_PRESETS = {
  finney: 'wss://entrypoint-finney.opentensor.ai:443',
  test: 'wss://test.finney.opentensor.ai:443',
  archive: 'wss://archive.chain.opentensor.ai:443',
  local: 'ws://127.0.0.1:9944',
} as const;
export type NetworkPreset = keyof typeof NETWORK_PRESETS;

/** @default 'finney' (CHAIN_NETWORK) */
export const DEFAULT_NETWORK: NetworkPreset = 'finney';

export class ChainConfigError extends Error {
  override readonly name = 'ChainConfigError';
}

/** A preset name or a `ws(s)://` URL → endpoint URL. Anything else is a configuration error. */
export function resolveEndpoint(network: string): string {
  if (Object.hasOwn(NETWORK_PRESETS, network)) return NETWORK_PRESETS[network as NetworkPreset];
  let url: URL;
  try {
    url = new URL(network);
  } catch {
    throw new ChainConfigError(`CHAIN_NETWORK must be one of ${Object.keys(NETWORK_PRESETS).join(', ')} or a ws:// / wss:// URL (got ${JSON.stringify(network.slice(0, 200))})`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new ChainConfigError(`CHAIN_NETWORK URL must use ws:// or wss:// (got ${url.protocol})`);
  return network;
}

/** An endpoint safe to print: credentials in the URL (user:pass@, ?token=) are redacted. */
export function redactEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (url.username || url.password) {
      url.username = 'redacted';
      url.password = '';
    }
    for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, 'redacted');
    return url.toString();
  } catch {
    return '<invalid endpoint>';
  }
}

export interface ReconnectPolicy {
  /** First delay after a drop. @default 250 */
  readonly initialMs: number;
  /** Cap of the exponential backoff. @default 30000 */
  readonly maxMs: number;
  /** ± fraction of random jitter so many validators do not reconnect in lockstep. @default 0.2 */
  readonly jitter: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = { initialMs: 250, maxMs: 30_000, jitter: 0.2 };

/** Delay before reconnect attempt `attempt` (0-based). Pure, for tests. */
export function reconnectDelayMs(attempt: number, policy: ReconnectPolicy = DEFAULT_RECONNECT_POLICY, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  const jitter = base * policy.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(base + jitter));
}

/** @default 60000 — per-request timeout of the provider (polkadot.js default is 60 s too). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/**
 * `WsProvider` with exponential-backoff reconnects. Connection state is observable through the usual
 * provider events (`connected`, `disconnected`, `error`).
 */
export class BackoffWsProvider extends WsProvider {
  private attempt = 0;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    endpoint: string,
    options: { headers?: Record<string, string>; policy?: ReconnectPolicy; requestTimeoutMs?: number } = {},
  ) {
    super(endpoint, false, options.headers ?? {}, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const policy = options.policy ?? DEFAULT_RECONNECT_POLICY;
    this.on('connected', () => {
      this.attempt = 0;
    });
    this.on('disconnected', () => {
      if (this.closed) return;
      clearTimeout(this.timer);
      const delay = reconnectDelayMs(this.attempt++, policy);
      this.timer = setTimeout(() => {
        if (this.closed || this.isConnected) return;
        this.connect().catch(() => undefined); // a failed dial emits 'disconnected' again ⇒ next backoff step
      }, delay);
      this.timer.unref();
    });
  }

  /** Starts the first dial; later dials are scheduled by the backoff. */
  start(): void {
    this.connect().catch(() => undefined);
  }

  override async disconnect(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await super.disconnect();
  }
}
