import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseModelRef } from './model-ref.ts';
import { LocalDirStore, ModelStoreError } from './model-store.ts';
import { bearerMatches } from '../rpc/auth.ts';

/**
 * The hub test double of spec/validation.md §5: a real HTTP server on 127.0.0.1 that serves a
 * {@link LocalDirStore} tree (`<root>/<repo>/<digest>/…`) with the Hugging Face API shape —
 * `GET /api/models/<repo>/tree/<revision>?recursive=true` (paginated with `Link` when `pageSize`
 * is set) and `GET /<repo>/resolve/<revision>/<path>` with single-range `Range` support (206,
 * `Content-Range`, `Accept-Ranges: bytes`). Faults are injected per request by `intercept`.
 */

export interface HubRequest {
  readonly method: string;
  readonly kind: 'tree' | 'resolve' | 'other';
  readonly repo: string | null;
  readonly revision: string | null;
  readonly path: string | null;
  readonly url: string;
  readonly range: string | null;
}

/**
 * An injected fault: an HTTP status to answer instead, `'hang'` to never answer, `'ignore-range'`
 * to answer 200 with the whole file, `'reset'` to send the headers and half the body then destroy
 * the socket, `'slow'` to trickle the body in {@link SLOW_CHUNK_BYTES} pieces every
 * {@link SLOW_CHUNK_INTERVAL_MS}.
 */
export type HubFault = number | 'hang' | 'ignore-range' | 'reset' | 'slow';

/** Returns a fault to inject, or undefined to serve normally. */
export type HubInterceptor = (req: HubRequest) => HubFault | undefined;

/** Bytes per write of a `'slow'` body. @default 64 */
export const SLOW_CHUNK_BYTES = 64;
/** Pause between writes of a `'slow'` body. @default 20 */
export const SLOW_CHUNK_INTERVAL_MS = 20;

/**
 * Listens on 127.0.0.1 port 0 (never 0.0.0.0) and returns the base URL and a `close` that also
 * drops kept-alive and hung connections. Shared by the local stand-ins and test servers.
 */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Requests the stand-ins remember (the newest ones), for tests' assertions. @default 1000 */
export const RECORDED_REQUESTS = 1000;

/**
 * The stand-ins' answer path: `log` appends to `requests` (bounded), `send` logs and writes the body
 * with the injected fault, if any. Shared by the local hub and the local OCI registry.
 */
export function requestRecorder<R>(requests: Array<R & { status: number }>) {
  const log = (req: R, status: number) => {
    requests.push({ ...req, status });
    if (requests.length > RECORDED_REQUESTS) requests.shift();
  };
  const send = (res: ServerResponse, req: R, status: number, body: string | Uint8Array = '', headers: Record<string, string> = {}, fault?: HubFault) => {
    log(req, status);
    writeBody(res, status, typeof body === 'string' ? Buffer.from(body) : body, headers, fault);
  };
  return { log, send };
}

/**
 * Writes a successful body honouring the `'reset'` / `'slow'` faults (other faults are handled
 * before a body is chosen). Shared by the HF hub and the OCI registry doubles.
 */
export function writeBody(res: ServerResponse, status: number, body: Uint8Array, headers: Record<string, string>, fault: HubFault | undefined): void {
  res.writeHead(status, { 'Content-Length': String(body.byteLength), ...headers });
  if (fault === 'reset') {
    // Half the body, flushed, then a hard socket close: the client sees a truncated body.
    res.write(body.subarray(0, Math.floor(body.byteLength / 2)), () => res.socket?.destroy());
    return;
  }
  if (fault === 'slow') {
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (at >= body.byteLength) {
        res.end();
        return;
      }
      const piece = body.subarray(at, at + SLOW_CHUNK_BYTES);
      at += piece.byteLength;
      res.write(piece);
      setTimeout(tick, SLOW_CHUNK_INTERVAL_MS);
    };
    tick();
    return;
  }
  res.end(body);
}

/** Counts requests by URL path (without the query), for tests proving what was (re-)fetched. */
export class RequestCounter {
  private readonly counts = new Map<string, number>();
  add(rawUrl: string): void {
    const path = new URL(rawUrl, 'http://local').pathname;
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
  }
  /** Requests seen for an exact path (e.g. `/v2/a/b/blobs/sha256:…`). */
  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }
  /** Sum over paths containing `fragment`. */
  countMatching(fragment: string): number {
    let n = 0;
    for (const [p, c] of this.counts) if (p.includes(fragment)) n += c;
    return n;
  }
  reset(): void {
    this.counts.clear();
  }
}

export interface LocalHubOptions {
  readonly root: string;
  /** When set, requests must carry `Authorization: Bearer <token>` (else 401). */
  readonly token?: string;
  readonly intercept?: HubInterceptor;
  /** Listing page size; unset ⇒ one page. */
  readonly pageSize?: number;
  /** Answer `resolve` with a 302 to a CDN-like path first, like the real hub. @default false */
  readonly redirectResolve?: boolean;
}

export interface LocalHub {
  /** Base URL, e.g. `http://127.0.0.1:41234` — the `endpoint` of an HfHubStore. */
  readonly url: string;
  /** The last RECORDED_REQUESTS (1000) requests with the status answered (0 for hung ones). */
  readonly requests: Array<HubRequest & { status: number }>;
  /** Every request counted by path (unbounded only by the number of distinct paths). */
  readonly counter: RequestCounter;
  setInterceptor(intercept: HubInterceptor | undefined): void;
  close(): Promise<void>;
}

const CDN_PREFIX = '/_cdn';

function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

function classify(method: string, rawUrl: string): HubRequest {
  const u = new URL(rawUrl, 'http://hub.local');
  let p = u.pathname;
  if (p.startsWith(`${CDN_PREFIX}/`)) p = p.slice(CDN_PREFIX.length);
  const tree = /^\/api\/models\/(.+)\/tree\/([^/]+)$/.exec(p);
  if (tree) return { method, kind: 'tree', repo: decode(tree[1] as string), revision: decode(tree[2] as string), path: null, url: rawUrl, range: null };
  const resolve = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(p);
  if (resolve) {
    const path = (resolve[3] as string).split('/').map(decode);
    return {
      method,
      kind: 'resolve',
      repo: decode(resolve[1] as string),
      revision: decode(resolve[2] as string),
      path: path.includes(null) ? null : path.join('/'),
      url: rawUrl,
      range: null,
    };
  }
  return { method, kind: 'other', repo: null, revision: null, path: null, url: rawUrl, range: null };
}

export async function startLocalHub(options: LocalHubOptions): Promise<LocalHub> {
  const store = new LocalDirStore(options.root);
  const requests: Array<HubRequest & { status: number }> = [];
  const counter = new RequestCounter();
  let intercept = options.intercept;
  const signal = new AbortController().signal;

  const { log, send } = requestRecorder(requests);

  const handle = async (inc: IncomingMessage, res: ServerResponse) => {
    const base = classify(inc.method ?? 'GET', inc.url ?? '/');
    const req: HubRequest = { ...base, range: typeof inc.headers.range === 'string' ? inc.headers.range : null };
    counter.add(req.url);
    if (options.token && !bearerMatches(inc.headers.authorization, options.token)) return send(res, req, 401, '{"error":"unauthorized"}');
    const injected = intercept?.(req);
    if (injected === 'hang') {
      log(req, 0);
      return; // never answer; the client's timeout must fire
    }
    if (typeof injected === 'number') return send(res, req, injected, JSON.stringify({ error: `injected ${injected}` }), { 'Content-Type': 'application/json' });
    if (req.method !== 'GET' || req.kind === 'other' || !req.repo || !req.revision) return send(res, req, 404, '{"error":"not found"}');
    const parsed = parseModelRef(`${req.repo}@${req.revision}`, { backends: ['hippius', 'hf'], allowMutableRef: true });
    if (!parsed.ok) return send(res, req, 404, '{"error":"repository not found"}');
    const ref = parsed.ref;

    if (req.kind === 'tree') {
      const files = await store.listFiles(ref, signal);
      files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      const dirs = new Set<string>();
      for (const f of files) {
        const parts = f.path.split('/');
        for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
      }
      const entries: unknown[] = [...dirs].map((d) => ({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d }));
      for (const f of files) {
        // Like the real hub, LFS files (the weights) expose their sha256 as `lfs.oid`.
        if (!f.path.endsWith('.safetensors') || f.size === 0) entries.push({ type: 'file', oid: '0'.repeat(40), size: f.size, path: f.path });
        else {
          const sha = createHash('sha256').update(await store.readRange(ref, f.path, 0, f.size - 1, signal)).digest('hex');
          entries.push({ type: 'file', oid: '0'.repeat(40), size: f.size, path: f.path, lfs: { oid: sha, size: f.size, pointerSize: 134 } });
        }
      }
      const u = new URL(req.url, 'http://hub.local');
      const cursor = Math.max(0, Number(u.searchParams.get('cursor') ?? '0') || 0);
      const size = options.pageSize ?? entries.length;
      const page = entries.slice(cursor, cursor + Math.max(1, size));
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (cursor + size < entries.length) {
        u.searchParams.set('cursor', String(cursor + size));
        headers.Link = `<${u.pathname}${u.search}>; rel="next"`;
      }
      return send(res, req, 200, JSON.stringify(page), headers);
    }

    // resolve
    if (options.redirectResolve && !(inc.url ?? '').startsWith(`${CDN_PREFIX}/`)) {
      return send(res, req, 302, '', { Location: `${CDN_PREFIX}${inc.url ?? ''}` });
    }
    if (!req.path) return send(res, req, 404, '{"error":"entry not found"}');
    const files = await store.listFiles(ref, signal);
    const file = files.find((f) => f.path === req.path);
    if (!file) return send(res, req, 404, '{"error":"entry not found"}');
    const size = file.size;
    const whole = async () => (size === 0 ? new Uint8Array(0) : store.readRange(ref, file.path, 0, size - 1, signal));
    const m = req.range ? /^bytes=(\d+)-(\d*)$/.exec(req.range) : null;
    if (!m || injected === 'ignore-range') {
      return send(res, req, 200, await whole(), { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' }, injected);
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
    if (start >= size || end < start) return send(res, req, 416, '', { 'Content-Range': `bytes */${size}` });
    const bytes = await store.readRange(ref, file.path, start, end, signal);
    return send(res, req, 206, bytes, { 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Type': 'application/octet-stream' }, injected);
  };

  const server = createServer((inc, res) => {
    handle(inc, res).catch((error) => {
      const req = { ...classify(inc.method ?? 'GET', inc.url ?? '/'), range: null };
      const status = error instanceof ModelStoreError && error.kind === 'not_found' ? 404 : 500;
      if (!res.headersSent) send(res, req, status, JSON.stringify({ error: String((error as Error).message) }));
      else res.destroy();
    });
  });
  const { url, close } = await listenOnLoopback(server);
  return {
    url,
    requests,
    counter,
    setInterceptor: (fn) => {
      intercept = fn;
    },
    close,
  };
}
