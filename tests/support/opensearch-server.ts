/**
 * A small OpenSearch stand-in for tests (no real server can be installed here): the subset of the
 * REST API the dedup backend and the official client use, on 127.0.0.1 port 0. It records every
 * request (method, path, query, parsed body) so tests can assert bodies equal the spec's JSON, checks
 * basic auth when configured, caps bodies, and validates per-dimension index bodies against the spec.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../../validation/local-hub.ts';
import { isDeepStrictEqual } from 'node:util';
import { tokensEqual } from '../../rpc/auth.ts';

/** Request bodies above this are refused with 413. @default 64 MiB */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly body: unknown;
}

export interface LocalOpenSearchOptions {
  readonly auth?: { readonly user: string; readonly password: string };
  /** Returns the required create body for an index name, or undefined to accept any body. */
  readonly expectedIndexBody?: (index: string) => object | undefined;
  /** @default DEFAULT_MAX_BODY_BYTES */
  readonly maxBodyBytes?: number;
}

interface StoredIndex {
  readonly body: unknown;
  readonly docs: Map<string, Record<string, unknown>>;
}

export interface LocalOpenSearch {
  readonly url: string;
  readonly requests: RecordedRequest[];
  readonly indices: Map<string, StoredIndex>;
  /** Makes every following request fail with this status (0 = healthy). */
  failWith(status: number): void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, cap: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        reject(new HttpError(413, 'content_too_long_exception', `body exceeds ${cap} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function field(source: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), source);
}

function termMatches(source: Record<string, unknown>, term: unknown): boolean {
  const [[name, value]] = Object.entries((term as { term: Record<string, unknown> }).term) as [[string, unknown]];
  const actual = field(source, name);
  const expected = value && typeof value === 'object' && 'value' in value ? (value as { value: unknown }).value : value;
  return actual === expected;
}

function cosine(x: number[], y: number[]): number {
  let dot = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < x.length; i++) {
    dot += x[i]! * y[i]!;
    xx += x[i]! * x[i]!;
    yy += y[i]! * y[i]!;
  }
  const d = Math.sqrt(xx) * Math.sqrt(yy);
  return d === 0 ? 0 : dot / d;
}

function filterSource(source: Record<string, unknown>, spec: unknown): Record<string, unknown> | undefined {
  if (spec === false) return undefined;
  if (!Array.isArray(spec)) return source;
  return Object.fromEntries(Object.entries(source).filter(([k]) => spec.includes(k)));
}

function search(indices: StoredIndex[], names: string[], body: Record<string, unknown>): object {
  const query = (body.query ?? { match_all: {} }) as Record<string, unknown>;
  const size = typeof body.size === 'number' ? body.size : 10;
  let scored: { index: string; id: string; score: number; source: Record<string, unknown> }[] = [];
  indices.forEach((index, i) => {
    for (const [id, source] of index.docs) scored.push({ index: names[i]!, id, score: 1, source });
  });
  if ('knn' in query) {
    const [[fieldName, spec]] = Object.entries(query.knn as Record<string, { vector: number[]; k: number }>) as [[string, { vector: number[]; k: number }]];
    if (!Array.isArray(spec.vector) || typeof spec.k !== 'number') throw new HttpError(400, 'parsing_exception', 'knn needs vector and k');
    // Lucene cosinesimil score: (1 + cos) / 2; exact here (a real cluster uses HNSW).
    scored = scored
      .map((s) => ({ ...s, score: (1 + cosine(spec.vector, field(s.source, fieldName) as number[])) / 2 }))
      .sort((a, b) => b.score - a.score)
      .slice(0, spec.k);
  } else if ('bool' in query) {
    const bool = query.bool as { filter?: unknown[]; must_not?: unknown[] };
    scored = scored.filter((s) => (bool.filter ?? []).every((t) => termMatches(s.source, t)) && !(bool.must_not ?? []).some((t) => termMatches(s.source, t)));
  } else if (!('match_all' in query)) {
    throw new HttpError(400, 'parsing_exception', `unsupported query ${Object.keys(query).join(',')}`);
  }
  const hits = scored.slice(0, size).map((s) => ({ _index: s.index, _id: s.id, _score: s.score, _source: filterSource(s.source, body._source) }));
  return { took: 1, timed_out: false, hits: { total: { value: scored.length, relation: 'eq' }, max_score: hits[0]?._score ?? null, hits } };
}

/** Starts the stand-in on 127.0.0.1, port 0. */
export async function startLocalOpenSearch(options: LocalOpenSearchOptions = {}): Promise<LocalOpenSearch> {
  const indices = new Map<string, StoredIndex>();
  const requests: RecordedRequest[] = [];
  const cap = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let failStatus = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const raw = await readBody(req, cap);
    let body: unknown;
    try {
      body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      throw new HttpError(400, 'parse_exception', 'request body is not JSON');
    }
    const method = req.method ?? 'GET';
    requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
    if (options.auth) {
      const expected = `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}`;
      if (!tokensEqual(req.headers.authorization ?? '', expected)) throw new HttpError(401, 'security_exception', 'missing authentication credentials');
    }
    if (failStatus) throw new HttpError(failStatus, 'injected_failure', 'failure injected by the test');
    const send = (status: number, payload?: object) => {
      const text = payload === undefined || method === 'HEAD' ? '' : JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const [first, second, third] = segments;
    if (!first) {
      return send(200, { name: 'local', cluster_name: 'albedo-test', version: { distribution: 'opensearch', number: '2.19.0', lucene_version: '9.12.1' }, tagline: 'The OpenSearch Project: https://opensearch.org/' });
    }
    if (first === '_cluster' && second === 'health') return send(200, { cluster_name: 'albedo-test', status: 'green', number_of_nodes: 1 });
    const missing = (name: string) => new HttpError(404, 'index_not_found_exception', `no such index [${name}]`);
    if (second === undefined) {
      if (method === 'HEAD') return send(indices.has(first) ? 200 : 404);
      if (method === 'PUT') {
        if (indices.has(first)) throw new HttpError(400, 'resource_already_exists_exception', `index [${first}] already exists`);
        const expected = options.expectedIndexBody?.(first);
        if (expected && !isDeepStrictEqual(body, expected)) throw new HttpError(400, 'mapper_parsing_exception', `index body of ${first} differs from the spec`);
        indices.set(first, { body, docs: new Map() });
        return send(200, { acknowledged: true, shards_acknowledged: true, index: first });
      }
    }
    if (second === '_doc' && third !== undefined) {
      const index = indices.get(first);
      if (!index) throw missing(first);
      if (method === 'PUT' || method === 'POST') {
        if (!body || typeof body !== 'object') throw new HttpError(400, 'parsing_exception', 'document must be an object');
        const result = index.docs.has(third) ? 'updated' : 'created';
        index.docs.set(third, body as Record<string, unknown>);
        return send(result === 'created' ? 201 : 200, { _index: first, _id: third, result });
      }
      if (method === 'GET') {
        const doc = index.docs.get(third);
        return doc ? send(200, { _index: first, _id: third, found: true, _source: doc }) : send(404, { _index: first, _id: third, found: false });
      }
    }
    if (second === '_search' && (method === 'POST' || method === 'GET')) {
      const names = first.endsWith('*') ? [...indices.keys()].filter((n) => n.startsWith(first.slice(0, -1))) : [first];
      const found = names.map((n) => indices.get(n));
      if (found.some((i) => i === undefined)) throw missing(first);
      return send(200, search(found as StoredIndex[], names, (body ?? {}) as Record<string, unknown>));
    }
    throw new HttpError(400, 'unsupported_operation', `${method} ${url.pathname} is not implemented by the test server`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const e = error instanceof HttpError ? error : new HttpError(500, 'internal', error instanceof Error ? error.message : String(error));
      if (res.headersSent) return res.destroy();
      const text = req.method === 'HEAD' ? '' : JSON.stringify({ error: { type: e.type, reason: e.message }, status: e.status });
      res.writeHead(e.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  const { url, close } = await listenOnLoopback(server);
  return {
    url,
    requests,
    indices,
    failWith: (status) => {
      failStatus = status;
    },
    close,
  };
}
