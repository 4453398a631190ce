import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HIPPIUS_POINTER_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, TITLE_ANNOTATION } from './hippius-store.ts';
import { type HubFault, listenOnLoopback, RequestCounter, requestRecorder } from './local-hub.ts';
import { type ModelRef, parseModelRef } from './model-ref.ts';
import { listDirectory, type StoreFile } from './model-store.ts';
import { compareCodePoints } from '../core/py-compat.ts';
import { createSyntheticModel, type SyntheticModel, type SyntheticModelOptions } from './synthetic-model.ts';
import { bearerMatches, tokensEqual } from '../rpc/auth.ts';

/**
 * The OCI registry test double (spec/validation.md §5 "test double"): a real HTTP server on
 * 127.0.0.1 serving `GET /v2/<repo>/manifests/<digest>` and `GET /v2/<repo>/blobs/<digest>` (with
 * single-range `Range` support: 206, `Content-Range`, `Accept-Ranges: bytes`) from a directory
 * written by {@link publishRegistryModel}:
 *
 * ```
 * <root>/blobs/sha256/<hex>                         every blob (file layers, pointers, packs, config)
 * <root>/repos/<repo>/manifests/sha256_<hex>        manifest bytes
 * ```
 *
 * Faults are injected per request (`intercept`, same vocabulary as the HF hub double) and every
 * request is counted by path. Auth modes: none, a static bearer token, or the distribution token
 * flow (401 + `WWW-Authenticate: Bearer realm=<url>/token,…`; the realm wants basic credentials).
 */

export interface RegistryRequest {
  readonly method: string;
  readonly kind: 'manifest' | 'blob' | 'token' | 'other';
  readonly repo: string | null;
  /** The manifest or blob reference (`sha256:…`). */
  readonly reference: string | null;
  readonly url: string;
  readonly range: string | null;
}

export type RegistryInterceptor = (req: RegistryRequest) => HubFault | undefined;

export type RegistryAuth =
  | { readonly mode: 'bearer'; readonly token: string }
  | { readonly mode: 'token-flow'; readonly username: string; readonly password: string };

export interface LocalRegistryOptions {
  readonly root: string;
  readonly auth?: RegistryAuth;
  readonly intercept?: RegistryInterceptor;
}

export interface LocalRegistry {
  /** Base URL, e.g. `http://127.0.0.1:41234` — the `registry` of a HippiusStore. */
  readonly url: string;
  /** The last RECORDED_REQUESTS (1000) requests with the status answered (0 for hung ones). */
  readonly requests: Array<RegistryRequest & { status: number }>;
  readonly counter: RequestCounter;
  /** Tokens issued by the realm so far. */
  readonly tokensIssued: () => number;
  setInterceptor(intercept: RegistryInterceptor | undefined): void;
  close(): Promise<void>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function blobPath(root: string, digest: string): string {
  return join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

function manifestPath(root: string, repo: string, digest: string): string {
  return join(root, 'repos', ...repo.split('/'), 'manifests', digest.replace(':', '_'));
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function putBlob(root: string, bytes: Uint8Array): Promise<string> {
  const digest = `sha256:${sha256Hex(bytes)}`;
  const path = blobPath(root, digest);
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path, bytes);
  return digest;
}

export interface PublishRegistryOptions {
  /** Files stored as chunked pointer layers (`application/vnd.hippius.pointer.v2`). @default none */
  readonly chunked?: (path: string) => boolean;
  /** Chunk size of chunked files. @default 100 */
  readonly chunkSize?: number;
  /** Chunks per pack blob (each pack starts with a few junk bytes so offsets are never 0). @default 3 */
  readonly chunksPerPack?: number;
  /** Include the whole-file sha256 in pointers. @default true */
  readonly pointerSha256?: boolean;
}

export interface PublishedRegistryModel {
  readonly ref: ModelRef;
  readonly uri: string;
  readonly manifestDigest: string;
  /** Repository files with size and sha256, sorted by path. */
  readonly files: readonly (StoreFile & { readonly sha256: string })[];
}

/**
 * Publishes the files of `dir` as an OCI artifact `repo@sha256:<manifest digest>` into a registry
 * root (for tests and the local `npm start` stand-in): computes every digest, writes the blobs,
 * pointer and pack blobs for chunked files, and the manifest.
 */
export async function publishRegistryModel(root: string, repo: string, dir: string, options: PublishRegistryOptions = {}): Promise<PublishedRegistryModel> {
  const chunkSize = options.chunkSize ?? 100;
  const perPack = options.chunksPerPack ?? 3;
  const listed = (await listDirectory(dir)).sort((a, b) => compareCodePoints(a.path, b.path));
  const layers: unknown[] = [];
  const files: Array<StoreFile & { sha256: string }> = [];
  for (const f of listed) {
    const bytes = await readFile(join(dir, ...f.path.split('/')));
    const sha = sha256Hex(bytes);
    files.push({ path: f.path, size: bytes.byteLength, sha256: sha });
    if (!options.chunked?.(f.path)) {
      const digest = await putBlob(root, bytes);
      layers.push({ mediaType: 'application/octet-stream', digest, size: bytes.byteLength, annotations: { [TITLE_ANNOTATION]: f.path } });
      continue;
    }
    const chunks: Array<{ size: number; pack_digest: string; pack_offset: number }> = [];
    for (let p = 0; p * chunkSize * perPack < bytes.byteLength; p++) {
      const junk = randomBytes(5 + p);
      const parts: Uint8Array[] = [junk];
      const offsets: Array<[number, number]> = [];
      let at = junk.byteLength;
      for (let c = 0; c < perPack; c++) {
        const from = (p * perPack + c) * chunkSize;
        if (from >= bytes.byteLength) break;
        const piece = bytes.subarray(from, Math.min(bytes.byteLength, from + chunkSize));
        offsets.push([at, piece.byteLength]);
        parts.push(piece);
        at += piece.byteLength;
      }
      const pack = Buffer.concat(parts);
      const packDigest = await putBlob(root, pack);
      for (const [offset, size] of offsets) chunks.push({ size, pack_digest: packDigest, pack_offset: offset });
    }
    const pointer = Buffer.from(JSON.stringify({ version: 2, size: bytes.byteLength, ...(options.pointerSha256 === false ? {} : { sha256: sha }), chunks }));
    const digest = await putBlob(root, pointer);
    layers.push({ mediaType: HIPPIUS_POINTER_MEDIA_TYPE, digest, size: pointer.byteLength, annotations: { [TITLE_ANNOTATION]: f.path } });
  }
  const config = Buffer.from('{}');
  const configDigest = await putBlob(root, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      artifactType: 'application/vnd.hippius.model.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: config.byteLength },
      layers,
    }),
  );
  const manifestDigest = `sha256:${sha256Hex(manifest)}`;
  const mpath = manifestPath(root, repo, manifestDigest);
  await mkdir(join(mpath, '..'), { recursive: true });
  await writeFile(mpath, manifest);
  const parsed = parseModelRef(`${repo}@${manifestDigest}`, { backends: ['hippius'] });
  if (!parsed.ok) throw new TypeError(`cannot publish ${repo}: ${parsed.message}`);
  return { ref: parsed.ref, uri: parsed.ref.uri, manifestDigest, files };
}

/**
 * Writes a synthetic model (validation/synthetic-model.ts) and publishes it into a registry root in
 * one step; the working directory is removed afterwards.
 */
export async function publishSyntheticRegistryModel(
  root: string,
  repo: string,
  options: SyntheticModelOptions & PublishRegistryOptions = {},
): Promise<PublishedRegistryModel & { readonly model: Omit<SyntheticModel, 'dir'> }> {
  const work = await mkdtemp(join(tmpdir(), 'albedo-synth-reg-'));
  try {
    const model = await createSyntheticModel(join(work, 'model'), options);
    const published = await publishRegistryModel(root, repo, model.dir, options);
    const { dir: _dir, ...rest } = model;
    return { ...published, model: rest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Overwrites a stored manifest with other bytes (tests of content addressing). */
export async function tamperRegistryManifest(root: string, ref: ModelRef, bytes: Uint8Array): Promise<void> {
  await writeFile(manifestPath(root, ref.repo, ref.digest), bytes);
}

function classify(method: string, rawUrl: string, range: string | null): RegistryRequest {
  const u = new URL(rawUrl, 'http://registry.local');
  const p = u.pathname;
  if (p === '/token') return { method, kind: 'token', repo: null, reference: null, url: rawUrl, range };
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(p);
  if (!m) return { method, kind: 'other', repo: null, reference: null, url: rawUrl, range };
  let repo: string | null = null;
  let reference: string | null = null;
  try {
    repo = decodeURIComponent(m[1] as string);
    reference = decodeURIComponent(m[3] as string);
  } catch {
    // left null: answered 404
  }
  return { method, kind: m[2] === 'manifests' ? 'manifest' : 'blob', repo, reference, url: rawUrl, range };
}

export async function startLocalRegistry(options: LocalRegistryOptions): Promise<LocalRegistry> {
  const requests: Array<RegistryRequest & { status: number }> = [];
  const counter = new RequestCounter();
  const issued = new Set<string>();
  let intercept = options.intercept;
  let origin = '';

  const { log, send } = requestRecorder(requests);
  const error = (res: ServerResponse, req: RegistryRequest, status: number, code: string, headers: Record<string, string> = {}) =>
    send(res, req, status, JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }), { 'Content-Type': 'application/json', ...headers });

  const authorized = (inc: IncomingMessage): boolean => {
    const auth = options.auth;
    if (!auth) return true;
    const header = inc.headers.authorization ?? '';
    if (auth.mode === 'bearer') return bearerMatches(header, auth.token);
    return header.startsWith('Bearer ') && issued.has(header.slice(7));
  };

  const handle = async (inc: IncomingMessage, res: ServerResponse) => {
    const req = classify(inc.method ?? 'GET', inc.url ?? '/', typeof inc.headers.range === 'string' ? inc.headers.range : null);
    counter.add(req.url);
    if (req.kind === 'token') {
      const auth = options.auth;
      if (auth?.mode !== 'token-flow') return error(res, req, 404, 'NOT_FOUND');
      const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
      if (!tokensEqual(inc.headers.authorization ?? '', expected)) return error(res, req, 401, 'UNAUTHORIZED');
      const token = randomBytes(16).toString('hex');
      issued.add(token);
      return send(res, req, 200, JSON.stringify({ token, access_token: token, expires_in: 300 }), { 'Content-Type': 'application/json' });
    }
    if (!authorized(inc)) {
      const headers: Record<string, string> = {};
      if (options.auth?.mode === 'token-flow') {
        headers['WWW-Authenticate'] = `Bearer realm="${origin}/token",service="local-registry",scope="repository:${req.repo ?? ''}:pull"`;
      }
      return error(res, req, 401, 'UNAUTHORIZED', headers);
    }
    const injected = intercept?.(req);
    if (injected === 'hang') {
      log(req, 0);
      return;
    }
    if (typeof injected === 'number') return error(res, req, injected, `INJECTED_${injected}`);
    if (req.method !== 'GET' || req.kind === 'other' || !req.repo || !req.reference || !DIGEST.test(req.reference)) return error(res, req, 404, 'NOT_FOUND');
    const parsed = parseModelRef(`${req.repo}@${req.reference}`, { backends: ['hippius'] });
    if (!parsed.ok) return error(res, req, 404, 'NAME_UNKNOWN');
    if (req.kind === 'manifest') {
      const bytes = await readFile(manifestPath(options.root, req.repo, req.reference)).catch(() => null);
      if (!bytes) return error(res, req, 404, 'MANIFEST_UNKNOWN');
      return send(res, req, 200, bytes, { 'Content-Type': OCI_MANIFEST_MEDIA_TYPE, 'Docker-Content-Digest': req.reference }, injected);
    }
    // Blobs are served to any repo that exists (a real registry links blobs per repo).
    const repoExists = await stat(join(options.root, 'repos', ...req.repo.split('/'))).catch(() => null);
    if (!repoExists) return error(res, req, 404, 'NAME_UNKNOWN');
    const blob = await stat(blobPath(options.root, req.reference)).catch(() => null);
    if (!blob?.isFile()) return error(res, req, 404, 'BLOB_UNKNOWN');
    const size = blob.size;
    const m = req.range ? /^bytes=(\d+)-(\d*)$/.exec(req.range) : null;
    if (!m || injected === 'ignore-range') {
      const bytes = await readFile(blobPath(options.root, req.reference));
      return send(res, req, 200, bytes, { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': req.reference }, injected);
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
    if (start >= size || end < start) return send(res, req, 416, '', { 'Content-Range': `bytes */${size}` });
    // Only the requested bytes are read: the `npm start` stand-in serves multi-GB blobs.
    const fh = await open(blobPath(options.root, req.reference), 'r');
    const slice = Buffer.allocUnsafe(end - start + 1);
    try {
      let off = 0;
      while (off < slice.byteLength) {
        const { bytesRead } = await fh.read(slice, off, slice.byteLength - off, start + off);
        if (bytesRead === 0) throw new Error('blob shrank while reading');
        off += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return send(res, req, 206, slice, { 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Type': 'application/octet-stream' }, injected);
  };

  const server = createServer((inc, res) => {
    handle(inc, res).catch((e) => {
      const req = classify(inc.method ?? 'GET', inc.url ?? '/', null);
      if (!res.headersSent) send(res, req, 500, JSON.stringify({ error: String((e as Error).message) }));
      else res.destroy();
    });
  });
  const { url, close } = await listenOnLoopback(server);
  origin = url;
  return {
    url,
    requests,
    counter,
    tokensIssued: () => issued.size,
    setInterceptor: (fn) => {
      intercept = fn;
    },
    close,
  };
}
