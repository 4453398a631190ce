import { createHash } from 'node:crypto';
import type { ModelRef } from './model-ref.ts';
import {
  checkPath,
  checkRange,
  DEFAULT_HUB_TIMEOUT_MS,
  encodePath,
  fetchHeadersWithTimeout,
  isSafeRepoPath,
  type ModelStore,
  ModelStoreError,
  parseJsonBytes,
  readBodyCapped,
  SHA256_HEX,
  type StoreFile,
  statusError,
  streamRangeBody,
  transportStoreError,
} from './model-store.ts';

/**
 * The Hippius model store (spec/validation.md §4.1): an OCI distribution registry where a model
 * `repo@sha256:<hex>` is an artifact manifest whose layers are the repository files, each named by
 * its `org.opencontainers.image.title` annotation.
 *
 * - Manifest: `GET /v2/<repo>/manifests/sha256:<hex>`; the bytes must hash to the pinned digest
 *   (content addressing — a registry that answers other bytes is broken or hostile, so it is an
 *   `unavailable` (INFRA) error, never trusted). Manifests are immutable, so they are cached.
 * - Plain layers: the file is the blob `GET /v2/<repo>/blobs/<layer digest>`; its sha256 is the
 *   layer digest, so {@link StoreFile.sha256} is known.
 * - Chunked layers (`application/vnd.hippius.pointer.v2`): the layer blob is a JSON pointer (format
 *   below) listing the file's chunks in file order, each a byte range of a larger "pack" blob.
 *   Logical ranges are mapped onto the chunks and concatenated.
 *
 * Pointer v2 format accepted (strict: unknown keys, wrong types, or inconsistent sizes are refused):
 * ```json
 * { "version": 2, "size": <file bytes>, "sha256": "<64 hex of the whole file, optional>",
 *   "chunks": [ { "size": <bytes, > 0>, "pack_digest": "sha256:<64 hex>", "pack_offset": <bytes, >= 0> }, … ] }
 * ```
 * with `sum(chunks[].size) == size`, at most {@link MAX_POINTER_CHUNKS} chunks and a blob of at most
 * {@link MAX_POINTER_BYTES} bytes.
 *
 * Auth: `HIPPIUS_HUB_TOKEN` is sent as a bearer token, or username + password as basic auth. When the
 * registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` (the distribution
 * token flow), a token is fetched from the realm (with the basic credentials, or the hub token as a
 * bearer, or anonymously), cached per scope, and the request is retried once.
 *
 * Errors: 404 ⇒ `not_found`; 401/403/429/5xx, transport, timeouts, malformed manifests or pointers
 * ⇒ `unavailable`; more layers than {@link MAX_MANIFEST_LAYERS} ⇒ `too_large` (a miner-made repo
 * that is simply too big, like an oversized HF listing).
 */

export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_MEDIA_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
export const HIPPIUS_POINTER_MEDIA_TYPE = 'application/vnd.hippius.pointer.v2';
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';

/** Largest manifest body accepted. @default 4 MiB */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Most layers in a manifest. @default 4096 */
export const MAX_MANIFEST_LAYERS = 4096;
/** Largest pointer blob accepted. @default 16 MiB */
export const MAX_POINTER_BYTES = 16 * 1024 * 1024;
/** Most chunks in one pointer. @default 200000 */
export const MAX_POINTER_CHUNKS = 200_000;
/** Pointer blobs fetched in parallel while listing. @default 8 */
export const POINTER_FETCH_CONCURRENCY = 8;
/** Largest token response from the auth realm. @default 1 MiB */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

export interface HippiusStoreOptions {
  /** `ALBEDO_HIPPIUS_REGISTRY`, e.g. `https://registry.hippius.com` (tests: the local registry). */
  readonly registry: string;
  /** `HIPPIUS_HUB_TOKEN`; sent as a bearer token, never logged. */
  readonly token?: string;
  /** `HIPPIUS_HUB_USERNAME`; with `password`, basic auth (and the realm credentials). */
  readonly username?: string;
  /** `HIPPIUS_HUB_PASSWORD`; never logged. */
  readonly password?: string;
  /** Per-request timeout (headers only for streaming reads). @default DEFAULT_HUB_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** For tests. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export interface PointerChunk {
  readonly size: number;
  readonly packDigest: string;
  readonly packOffset: number;
}

export interface HippiusPointer {
  readonly size: number;
  readonly sha256?: string;
  readonly chunks: readonly PointerChunk[];
}

interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly layerDigest: string;
  readonly chunked: boolean;
}

interface ManifestEntry {
  readonly files: Map<string, ManifestFile>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Only raised after the bytes matched their digest: the published object itself is invalid. */
function malformed(what: string, why: string): ModelStoreError {
  return new ModelStoreError('malformed', `${what}: ${why}`);
}

function isSafeInt(v: unknown, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** Strictly parses a pointer v2 blob (see the module comment). Throws `unavailable` when malformed. */
export function parsePointer(bytes: Uint8Array, what: string): HippiusPointer {
  if (bytes.byteLength > MAX_POINTER_BYTES) throw new ModelStoreError('too_large', `${what}: pointer exceeds ${MAX_POINTER_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = parseJsonBytes(bytes, what);
  } catch {
    throw malformed(what, 'pointer is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed(what, 'pointer is not a JSON object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!['version', 'size', 'sha256', 'chunks'].includes(k)) throw malformed(what, `pointer has unknown key ${JSON.stringify(k.slice(0, 40))}`);
  if (obj.version !== 2) throw malformed(what, 'pointer version must be 2');
  if (!isSafeInt(obj.size)) throw malformed(what, 'pointer size must be a non-negative integer');
  if (obj.sha256 !== undefined && (typeof obj.sha256 !== 'string' || !SHA256_HEX.test(obj.sha256))) throw malformed(what, 'pointer sha256 must be 64 lowercase hex digits');
  if (!Array.isArray(obj.chunks)) throw malformed(what, 'pointer chunks must be an array');
  if (obj.chunks.length > MAX_POINTER_CHUNKS) throw malformed(what, `pointer has more than ${MAX_POINTER_CHUNKS} chunks`);
  const chunks: PointerChunk[] = [];
  let total = 0;
  for (const [i, c] of obj.chunks.entries()) {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw malformed(what, `pointer chunk ${i} is not an object`);
    const chunk = c as Record<string, unknown>;
    for (const k of Object.keys(chunk)) if (!['size', 'pack_digest', 'pack_offset'].includes(k)) throw malformed(what, `pointer chunk ${i} has unknown key ${JSON.stringify(k.slice(0, 40))}`);
    if (!isSafeInt(chunk.size, 1)) throw malformed(what, `pointer chunk ${i} size must be a positive integer`);
    if (!isSafeInt(chunk.pack_offset)) throw malformed(what, `pointer chunk ${i} pack_offset must be a non-negative integer`);
    if (typeof chunk.pack_digest !== 'string' || !DIGEST.test(chunk.pack_digest)) throw malformed(what, `pointer chunk ${i} pack_digest must be sha256:<64 hex>`);
    if (!Number.isSafeInteger(chunk.pack_offset + chunk.size)) throw malformed(what, `pointer chunk ${i} range overflows`);
    total += chunk.size;
    if (!Number.isSafeInteger(total)) throw malformed(what, 'pointer chunk sizes overflow');
    chunks.push({ size: chunk.size, packDigest: chunk.pack_digest, packOffset: chunk.pack_offset });
  }
  if (total !== obj.size) throw malformed(what, `pointer chunk sizes sum to ${total}, not the declared size ${obj.size}`);
  return obj.sha256 === undefined ? { size: obj.size, chunks } : { size: obj.size, sha256: obj.sha256 as string, chunks };
}

/** The pieces of `pointer` covering logical bytes `start..end` inclusive: pack byte ranges in file order. */
export function mapRangeToChunks(pointer: HippiusPointer, start: number, end: number): Array<{ packDigest: string; from: number; to: number }> {
  const out: Array<{ packDigest: string; from: number; to: number }> = [];
  let chunkStart = 0;
  for (const c of pointer.chunks) {
    const chunkEnd = chunkStart + c.size - 1;
    if (chunkEnd >= start && chunkStart <= end) {
      const a = Math.max(start, chunkStart) - chunkStart;
      const b = Math.min(end, chunkEnd) - chunkStart;
      out.push({ packDigest: c.packDigest, from: c.packOffset + a, to: c.packOffset + b });
    }
    if (chunkStart > end) break;
    chunkStart += c.size;
  }
  return out;
}

interface Challenge {
  readonly realm: string;
  readonly service?: string;
  readonly scope?: string;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; null for anything else. */
export function parseBearerChallenge(header: string | null): Challenge | null {
  if (!header || !/^bearer\s/i.test(header)) return null;
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/([a-zA-Z_]+)\s*=\s*"([^"]*)"/g)) params[(m[1] as string).toLowerCase()] = m[2] as string;
  if (!params.realm) return null;
  return { realm: params.realm, ...(params.service ? { service: params.service } : {}), ...(params.scope ? { scope: params.scope } : {}) };
}

export class HippiusStore implements ModelStore {
  private readonly registry: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  /** Verified manifests by `repo@digest` (immutable by content addressing). */
  private readonly manifests = new Map<string, Promise<ManifestEntry>>();
  /** Parsed pointers by layer digest (immutable). */
  private readonly pointers = new Map<string, Promise<HippiusPointer>>();
  /** Registry tokens by challenge (realm + service + scope). */
  private readonly tokens = new Map<string, string>();

  constructor(private readonly options: HippiusStoreOptions) {
    let u: URL;
    try {
      u = new URL(options.registry);
    } catch {
      throw new TypeError(`registry is not a URL: ${String(options.registry).slice(0, 120)}`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`registry must be http(s): ${u.origin}`);
    this.registry = u.toString().replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HUB_TIMEOUT_MS;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  blobUrl(ref: ModelRef, digest: string): string {
    return `${this.registry}/v2/${encodePath(ref.repo)}/blobs/${digest}`;
  }

  async listFiles(ref: ModelRef, signal: AbortSignal): Promise<StoreFile[]> {
    const manifest = await this.manifest(ref, signal);
    const files = [...manifest.files.values()];
    // Chunked files need their pointer for the logical size: fetched a few at a time.
    const pointers = new Map<string, HippiusPointer>();
    const chunked = files.filter((f) => f.chunked);
    for (let i = 0; i < chunked.length; i += POINTER_FETCH_CONCURRENCY) {
      const batch = chunked.slice(i, i + POINTER_FETCH_CONCURRENCY);
      const got = await Promise.all(batch.map((f) => this.pointer(ref, f, signal)));
      for (const [j, f] of batch.entries()) pointers.set(f.path, got[j] as HippiusPointer);
    }
    return files.map((f) => {
      if (!f.chunked) return { path: f.path, size: f.size, sha256: f.layerDigest.slice('sha256:'.length) };
      const p = pointers.get(f.path) as HippiusPointer;
      return p.sha256 ? { path: f.path, size: p.size, sha256: p.sha256 } : { path: f.path, size: p.size };
    });
  }

  async readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    checkPath(path);
    const file = await this.file(ref, path, signal);
    const size = file.chunked ? (await this.pointer(ref, file, signal)).size : file.size;
    if (size > maxBytes) throw new ModelStoreError('too_large', `${path} is ${size} bytes (cap ${maxBytes})`);
    if (size === 0) return parseJsonBytes(new Uint8Array(0), path);
    if (!file.chunked) {
      // A whole-blob GET (no Range) also works on registries that redirect to plain storage.
      const what = `downloading ${path} of ${ref.uri}`;
      const res = await this.request(this.blobUrl(ref, file.layerDigest), {}, signal, what, true);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw statusError(res.status, what);
      }
      const bytes = await readBodyCapped(res, maxBytes, path).catch((e) => {
        throw transportStoreError(e, signal, what, this.timeoutMs);
      });
      if (bytes.byteLength !== size) throw new ModelStoreError('unavailable', `${what}: got ${bytes.byteLength} of ${size} bytes`);
      // A whole blob is cheap to check against its digest (content addressing).
      if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== file.layerDigest) throw new ModelStoreError('unavailable', `${what}: blob does not hash to its layer digest`);
      return parseJsonBytes(bytes, path);
    }
    return parseJsonBytes(await this.readRange(ref, path, 0, size - 1, signal), path);
  }

  async readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    checkPath(path);
    checkRange(start, end);
    const out = new Uint8Array(end - start + 1);
    let at = 0;
    for await (const piece of this.openRange(ref, path, start, end, signal)) {
      out.set(piece, at);
      at += piece.byteLength;
    }
    return out;
  }

  async *openRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    checkPath(path);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) throw new ModelStoreError('unavailable', `invalid byte range ${start}-${end}`);
    const file = await this.file(ref, path, signal);
    const what = `reading ${path} of ${ref.uri}`;
    if (!file.chunked) {
      if (end >= file.size) throw new ModelStoreError('unavailable', `range ${start}-${end} is beyond the end of ${path} (${file.size} bytes)`);
      yield* this.streamBlobRange(ref, file.layerDigest, start, end, signal, what);
      return;
    }
    const pointer = await this.pointer(ref, file, signal);
    if (end >= pointer.size) throw new ModelStoreError('unavailable', `range ${start}-${end} is beyond the end of ${path} (${pointer.size} bytes)`);
    for (const piece of mapRangeToChunks(pointer, start, end)) {
      yield* this.streamBlobRange(ref, piece.packDigest, piece.from, piece.to, signal, what);
    }
  }

  private async *streamBlobRange(ref: ModelRef, digest: string, start: number, end: number, signal: AbortSignal, what: string): AsyncIterable<Uint8Array> {
    const url = this.blobUrl(ref, digest);
    const res = await this.request(url, { Range: `bytes=${start}-${end}` }, signal, what, false);
    yield* streamRangeBody(res, url, start, end, signal, what);
  }

  private async file(ref: ModelRef, path: string, signal: AbortSignal): Promise<ManifestFile> {
    const f = (await this.manifest(ref, signal)).files.get(path);
    if (!f) throw new ModelStoreError('not_found', `${path} not found in ${ref.uri}`, 404);
    return f;
  }

  private manifest(ref: ModelRef, signal: AbortSignal): Promise<ManifestEntry> {
    const key = ref.uri;
    let p = this.manifests.get(key);
    if (!p) {
      p = this.fetchManifest(ref, signal);
      this.manifests.set(key, p);
      // Failures are not cached: the next call retries.
      p.catch(() => this.manifests.delete(key));
    }
    return p;
  }

  private async fetchManifest(ref: ModelRef, signal: AbortSignal): Promise<ManifestEntry> {
    const what = `manifest of ${ref.uri}`;
    if (!DIGEST.test(ref.digest)) throw new ModelStoreError('unavailable', `${ref.uri} is not pinned by sha256 digest`);
    const url = `${this.registry}/v2/${encodePath(ref.repo)}/manifests/${ref.digest}`;
    const res = await this.request(url, { Accept: `${OCI_MANIFEST_MEDIA_TYPE}, ${DOCKER_MANIFEST_MEDIA_TYPE}` }, signal, `fetching ${what}`, true);
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw statusError(res.status, `fetching ${what}`);
    }
    const bytes = await readBodyCapped(res, MAX_MANIFEST_BYTES, what).catch((e) => {
      throw e instanceof ModelStoreError && e.kind === 'too_large'
        ? new ModelStoreError('unavailable', `${what} exceeds ${MAX_MANIFEST_BYTES} bytes`)
        : transportStoreError(e, signal, `fetching ${what}`, this.timeoutMs);
    });
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== ref.digest) {
      throw new ModelStoreError('unavailable', `${what}: registry returned bytes hashing to ${actual}, not the pinned digest (content addressing violated)`);
    }
    let raw: unknown;
    try {
      raw = parseJsonBytes(bytes, what);
    } catch {
      throw malformed(what, 'not valid JSON');
    }
    return { files: parseManifest(raw, what) };
  }

  private pointer(ref: ModelRef, file: ManifestFile, signal: AbortSignal): Promise<HippiusPointer> {
    let p = this.pointers.get(file.layerDigest);
    if (!p) {
      p = this.fetchPointer(ref, file, signal);
      this.pointers.set(file.layerDigest, p);
      p.catch(() => this.pointers.delete(file.layerDigest));
    }
    return p;
  }

  private async fetchPointer(ref: ModelRef, file: ManifestFile, signal: AbortSignal): Promise<HippiusPointer> {
    const what = `pointer of ${file.path} in ${ref.uri}`;
    if (file.size > MAX_POINTER_BYTES) throw new ModelStoreError('unavailable', `${what}: pointer layer is ${file.size} bytes (cap ${MAX_POINTER_BYTES})`);
    const res = await this.request(this.blobUrl(ref, file.layerDigest), {}, signal, `fetching ${what}`, true);
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw statusError(res.status, `fetching ${what}`);
    }
    const bytes = await readBodyCapped(res, MAX_POINTER_BYTES, what).catch((e) => {
      throw transportStoreError(e, signal, `fetching ${what}`, this.timeoutMs);
    });
    // The pointer is a blob like any other: content addressing applies to it too.
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== file.layerDigest) throw new ModelStoreError('unavailable', `${what}: blob hashes to ${actual}, not its layer digest`);
    return parsePointer(bytes, what);
  }

  /**
   * One registry request with auth: the static credentials first; on a 401 bearer challenge, a
   * realm token is fetched and the request retried once. `wholeTimeout` bounds the body too
   * (small reads); streaming reads bound only the headers.
   */
  private async request(url: string, headers: Record<string, string>, signal: AbortSignal, what: string, wholeTimeout: boolean): Promise<Response> {
    const send = async (auth: string | undefined): Promise<Response> => {
      const h: Record<string, string> = { ...headers, 'User-Agent': 'albedo-validator' };
      if (auth) h.Authorization = auth;
      if (wholeTimeout) {
        try {
          return await this.fetchImpl(url, { headers: h, redirect: 'follow', signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) });
        } catch (error) {
          throw transportStoreError(error, signal, what, this.timeoutMs);
        }
      }
      return fetchHeadersWithTimeout(this.fetchImpl, url, { headers: h, redirect: 'follow' }, signal, this.timeoutMs, what);
    };
    const challengeKeyOf = (c: Challenge) => `${c.realm}\n${c.service ?? ''}\n${c.scope ?? ''}`;
    const scope = this.scopeKey(url);
    const cached = scope ? this.tokens.get(scope) : undefined;
    const res = await send(cached ? `Bearer ${cached}` : this.staticAuth());
    if (res.status !== 401) return res;
    const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
    await res.body?.cancel().catch(() => {});
    if (!challenge) return new Response(null, { status: 401 });
    const token = await this.fetchToken(challenge, signal, what);
    if (scope) this.tokens.set(scope, token);
    this.tokens.set(challengeKeyOf(challenge), token);
    return send(`Bearer ${token}`);
  }

  /** Tokens are reused per repository (the pull scope of a real registry). */
  private scopeKey(url: string): string | null {
    const m = /\/v2\/(.+)\/(?:manifests|blobs)\//.exec(new URL(url).pathname);
    return m ? `repo:${m[1]}` : null;
  }

  private staticAuth(): string | undefined {
    if (this.options.token) return `Bearer ${this.options.token}`;
    if (this.options.username !== undefined && this.options.password !== undefined) {
      return `Basic ${Buffer.from(`${this.options.username}:${this.options.password}`).toString('base64')}`;
    }
    return undefined;
  }

  private async fetchToken(challenge: Challenge, signal: AbortSignal, what: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch {
      throw new ModelStoreError('unavailable', `${what}: registry sent an invalid auth realm`, 401);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new ModelStoreError('unavailable', `${what}: auth realm must be http(s)`, 401);
    // Never send credentials to plain http on another host than the registry.
    const registryOrigin = new URL(this.registry).origin;
    if (realm.protocol === 'http:' && realm.origin !== registryOrigin) throw new ModelStoreError('unavailable', `${what}: refusing a plain-http auth realm on another origin`, 401);
    if (challenge.service) realm.searchParams.set('service', challenge.service);
    if (challenge.scope) realm.searchParams.set('scope', challenge.scope);
    const h: Record<string, string> = { 'User-Agent': 'albedo-validator' };
    const basic = this.options.username !== undefined && this.options.password !== undefined;
    if (basic) h.Authorization = `Basic ${Buffer.from(`${this.options.username}:${this.options.password}`).toString('base64')}`;
    else if (this.options.token) h.Authorization = `Bearer ${this.options.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(realm.toString(), { headers: h, redirect: 'follow', signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) });
    } catch (error) {
      throw transportStoreError(error, signal, `${what} (auth token)`, this.timeoutMs);
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new ModelStoreError('unavailable', `${what}: auth realm answered HTTP ${res.status}`, res.status === 404 ? 401 : res.status);
    }
    const body = await readBodyCapped(res, MAX_TOKEN_RESPONSE_BYTES, 'token response').catch((e) => {
      throw transportStoreError(e, signal, `${what} (auth token)`, this.timeoutMs);
    });
    let parsed: unknown;
    try {
      parsed = parseJsonBytes(body, 'token response');
    } catch {
      throw new ModelStoreError('unavailable', `${what}: auth realm answered invalid JSON`, 401);
    }
    const t = (parsed as { token?: unknown; access_token?: unknown } | null)?.token ?? (parsed as { access_token?: unknown } | null)?.access_token;
    if (typeof t !== 'string' || t.length === 0 || t.length > 64 * 1024) throw new ModelStoreError('unavailable', `${what}: auth realm answered no token`, 401);
    return t;
  }
}

/** Validates an OCI/Docker image manifest and maps its titled layers to repository files. */
export function parseManifest(raw: unknown, what: string): Map<string, ManifestFile> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed(what, 'not a JSON object');
  const m = raw as { schemaVersion?: unknown; mediaType?: unknown; layers?: unknown };
  if (m.schemaVersion !== 2) throw malformed(what, 'schemaVersion must be 2');
  if (m.mediaType !== undefined && m.mediaType !== OCI_MANIFEST_MEDIA_TYPE && m.mediaType !== DOCKER_MANIFEST_MEDIA_TYPE) {
    throw malformed(what, `unsupported manifest media type ${JSON.stringify(String(m.mediaType).slice(0, 80))} (image indexes are not model artifacts)`);
  }
  if (!Array.isArray(m.layers)) throw malformed(what, 'layers must be an array');
  if (m.layers.length > MAX_MANIFEST_LAYERS) throw new ModelStoreError('too_large', `${what}: more than ${MAX_MANIFEST_LAYERS} layers`);
  const files = new Map<string, ManifestFile>();
  for (const [i, l] of m.layers.entries()) {
    if (typeof l !== 'object' || l === null) throw malformed(what, `layer ${i} is not an object`);
    const layer = l as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown };
    if (typeof layer.digest !== 'string' || !DIGEST.test(layer.digest)) throw malformed(what, `layer ${i} digest must be sha256:<64 hex>`);
    if (!isSafeInt(layer.size)) throw malformed(what, `layer ${i} size must be a non-negative integer`);
    if (typeof layer.mediaType !== 'string') throw malformed(what, `layer ${i} has no media type`);
    const annotations = typeof layer.annotations === 'object' && layer.annotations !== null ? (layer.annotations as Record<string, unknown>) : {};
    const title = annotations[TITLE_ANNOTATION];
    // Untitled layers are not repository files (OCI artifacts name every file layer).
    if (title === undefined) continue;
    if (typeof title !== 'string' || !isSafeRepoPath(title)) throw malformed(what, `layer ${i} has an unsafe title ${JSON.stringify(String(title).slice(0, 120))}`);
    if (files.has(title)) throw malformed(what, `two layers are titled ${JSON.stringify(title)}`);
    files.set(title, { path: title, size: layer.size, layerDigest: layer.digest, chunked: layer.mediaType === HIPPIUS_POINTER_MEDIA_TYPE });
  }
  return files;
}

/** A store from the environment (spec/config.md): registry URL and the optional credentials. */
export function hippiusStoreFromEnv(env: NodeJS.ProcessEnv = process.env): HippiusStore {
  const token = env.HIPPIUS_HUB_TOKEN?.trim();
  const username = env.HIPPIUS_HUB_USERNAME?.trim();
  const password = env.HIPPIUS_HUB_PASSWORD;
  return new HippiusStore({
    registry: env.ALBEDO_HIPPIUS_REGISTRY?.trim() || 'https://registry.hippius.com',
    ...(token ? { token } : {}),
    ...(username && password !== undefined && password !== '' ? { username, password } : {}),
  });
}
