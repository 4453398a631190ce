import { type FileHandle, lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { digestPathComponent, isValidRepo, type ModelRef } from './model-ref.ts';
import { readBoundedBody } from '../core/io.ts';

/**
 * Read access to a pinned model in a store. Paths are repository paths with `/` separators.
 * Every method throws {@link ModelStoreError} (and nothing else) on failure; the checks map its
 * `kind` to a fault code per step (spec/validation.md §1).
 */
export interface ModelStore {
  /** All files of the repository at the pinned revision. */
  listFiles(ref: ModelRef, signal: AbortSignal): Promise<StoreFile[]>;
  /** Downloads and parses a small JSON file of at most `maxBytes` bytes. */
  readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal): Promise<unknown>;
  /** Bytes `start..end` inclusive (HTTP Range semantics); exactly `end − start + 1` bytes or an error. */
  readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): Promise<Uint8Array>;
  /**
   * Optional streaming form of {@link readRange} for the downloader: yields the bytes `start..end`
   * in order, in chunks, so a 32 MiB part is never held whole in memory. Yields exactly
   * `end − start + 1` bytes in total or throws a {@link ModelStoreError}. Unlike `readRange`, the
   * request timeout covers only the response headers: a slow body is the stall watchdog's business
   * (spec/validation.md §5), and a 60 s cap on a whole part would fail slow-but-moving links.
   */
  openRange?(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
}

export interface StoreFile {
  readonly path: string;
  readonly size: number;
  /**
   * Expected sha256 of the file's bytes (64 lowercase hex, no `sha256:` prefix) when the store
   * knows it: the OCI layer digest (Hippius), the pointer's file digest (Hippius chunked layers),
   * the LFS oid (Hugging Face). The downloader verifies it.
   */
  readonly sha256?: string;
}

/** 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * - `not_found`: the store says the repo/revision/file does not exist (HTTP 404). The checks
 *   confirm it once more before charging the miner (`repo_not_found`).
 * - `unavailable`: our side or the store's: 401/403/429/5xx, timeouts, transport, protocol errors.
 * - `too_large`: the object exceeds the caller's byte cap or the listing cap.
 * - `invalid_json`: the file is not UTF-8 JSON.
 * - `malformed`: a content-verified object the miner published (an OCI manifest or pointer whose
 *   bytes hash to its digest) is structurally invalid. Content addressing makes this permanent and
 *   the publisher's doing, so it is a MINER fault, unlike bytes that fail their digest (`unavailable`).
 */
export type ModelStoreErrorKind = 'not_found' | 'unavailable' | 'too_large' | 'invalid_json' | 'malformed';

export class ModelStoreError extends Error {
  override readonly name = 'ModelStoreError';
  constructor(
    readonly kind: ModelStoreErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Most files a listing may return; larger repos are refused (`too_large`). @default 10000 */
export const MAX_LISTED_FILES = 10_000;
/** Largest single range read; bounds memory (the header cap must stay below it). @default 256 MiB */
export const MAX_RANGE_BYTES = 256 * 1024 * 1024;
/** Longest repository path accepted for a read. @default 1024 */
export const MAX_PATH_LENGTH = 1024;
/** Per-request timeout of the hub client (spec §4.1: 60 s). @default 60000 */
export const DEFAULT_HUB_TIMEOUT_MS = 60_000;
/** Largest listing response body. @default 32 MiB */
export const MAX_LISTING_BYTES = 32 * 1024 * 1024;
/** Most listing pages followed through `Link: rel="next"`. @default 50 */
export const MAX_LISTING_PAGES = 50;

/** True for a relative `/`-separated path with no empty, `.` or `..` segment, backslash or NUL. */
export function isSafeRepoPath(path: string): boolean {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_PATH_LENGTH) return false;
  if (path.includes('\\') || path.includes('\0') || path.startsWith('/')) return false;
  return path.split('/').every((seg) => seg.length > 0 && seg !== '.' && seg !== '..');
}

export function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new ModelStoreError('unavailable', `invalid byte range ${start}-${end}`);
  }
  if (end - start + 1 > MAX_RANGE_BYTES) throw new ModelStoreError('too_large', `byte range ${start}-${end} exceeds ${MAX_RANGE_BYTES} bytes`);
}

export function checkPath(path: string): void {
  if (!isSafeRepoPath(path)) throw new ModelStoreError('unavailable', `refusing unsafe repository path ${JSON.stringify(String(path).slice(0, 120))}`);
}

/** Strict UTF-8 JSON parse of a file's bytes (Python `json.loads(bytes)` also refuses bad UTF-8). */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ModelStoreError('invalid_json', `${what} is not valid UTF-8`);
  }
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    throw new ModelStoreError('invalid_json', `${what} is not valid JSON`);
  }
}

export function abortError(signal: AbortSignal, what: string): ModelStoreError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new ModelStoreError('unavailable', `${what}: ${reason}`);
}

// ---------------------------------------------------------------------------------------------
// Local directory store
// ---------------------------------------------------------------------------------------------

/** Directory of a model in a {@link LocalDirStore} layout: `<root>/<repo>/<digest without sha256:>`. */
export function localModelDir(root: string, ref: Pick<ModelRef, 'repo' | 'digest'>): string {
  const component = digestPathComponent(ref);
  if (!isValidRepo(ref.repo)) throw new ModelStoreError('unavailable', `refusing unsafe repo ${JSON.stringify(ref.repo.slice(0, 120))}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(component) || component.length > 128) {
    throw new ModelStoreError('unavailable', `refusing unsafe digest ${JSON.stringify(ref.digest.slice(0, 120))}`);
  }
  return join(resolve(root), ...ref.repo.split('/'), component);
}

function within(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function fsError(error: unknown, what: string): ModelStoreError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ModelStoreError('not_found', `${what} not found`);
  return new ModelStoreError('unavailable', `${what}: ${(error as Error | undefined)?.message ?? String(error)}`, undefined, { cause: error });
}

/**
 * Regular files under `dir` (recursively, `/`-separated relative paths, symlinks skipped), at most
 * {@link MAX_LISTED_FILES} files and 16 levels deep.
 */
export async function listDirectory(dir: string, signal: AbortSignal = new AbortController().signal): Promise<StoreFile[]> {
  const out: StoreFile[] = [];
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (signal.aborted) throw abortError(signal, 'listing aborted');
    if (depth > 16) throw new ModelStoreError('too_large', `directory nesting deeper than 16 levels at ${rel}`);
    const entries = await readdir(abs, { withFileTypes: true }).catch((e) => {
      throw fsError(e, `directory ${rel || '.'}`);
    });
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      const childAbs = join(abs, e.name);
      if (e.isSymbolicLink()) continue;
      if (e.isDirectory()) await walk(childAbs, childRel, depth + 1);
      else if (e.isFile()) {
        if (out.length >= MAX_LISTED_FILES) throw new ModelStoreError('too_large', `repository lists more than ${MAX_LISTED_FILES} files`);
        const st = await stat(childAbs).catch((err) => {
          throw fsError(err, childRel);
        });
        out.push({ path: childRel, size: st.size });
      }
    }
  };
  await walk(dir, '', 0);
  return out;
}

/**
 * Serves models from a directory tree `<root>/<repo>/<digest-without-prefix>/` (demo stack,
 * tests, and the miner CLI on a local checkout). Repo, digest and file paths are validated, and the
 * resolved real path must stay inside the model directory, so `..` and symlinks cannot escape it.
 * Symlinks are not listed.
 */
export class LocalDirStore implements ModelStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  modelDir(ref: Pick<ModelRef, 'repo' | 'digest'>): string {
    return localModelDir(this.root, ref);
  }

  async listFiles(ref: ModelRef, signal: AbortSignal): Promise<StoreFile[]> {
    return listDirectory(await this.realModelDir(ref), signal);
  }

  async readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    const fh = await this.openFile(ref, path);
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) throw new ModelStoreError('too_large', `${path} is ${size} bytes (cap ${maxBytes})`);
      if (signal.aborted) throw abortError(signal, `reading ${path}`);
      const bytes = await readExactly(fh, 0, size, path);
      return parseJsonBytes(bytes, path);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    checkRange(start, end);
    const fh = await this.openFile(ref, path);
    try {
      const { size } = await fh.stat();
      if (end >= size) throw new ModelStoreError('unavailable', `range ${start}-${end} is beyond the end of ${path} (${size} bytes)`);
      if (signal.aborted) throw abortError(signal, `reading ${path}`);
      return await readExactly(fh, start, end - start + 1, path);
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async *openRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const step = 1024 * 1024;
    for (let at = start; at <= end; at += step) {
      if (signal.aborted) throw abortError(signal, `reading ${path}`);
      yield await this.readRange(ref, path, at, Math.min(end, at + step - 1), signal);
    }
  }

  private async realModelDir(ref: ModelRef): Promise<string> {
    const dir = this.modelDir(ref);
    let real: string;
    try {
      real = await realpath(dir);
    } catch (e) {
      throw fsError(e, `model ${ref.uri}`);
    }
    const st = await stat(real).catch((e) => {
      throw fsError(e, `model ${ref.uri}`);
    });
    if (!st.isDirectory()) throw new ModelStoreError('not_found', `model ${ref.uri} not found`);
    return real;
  }

  private async openFile(ref: ModelRef, path: string): Promise<FileHandle> {
    checkPath(path);
    const dir = await this.realModelDir(ref);
    const abs = join(dir, ...path.split('/'));
    if (!within(dir, abs)) throw new ModelStoreError('unavailable', `path ${path} escapes the model directory`);
    const lst = await lstat(abs).catch((e) => {
      throw fsError(e, path);
    });
    if (lst.isSymbolicLink()) throw new ModelStoreError('not_found', `${path} not found (symlinks are not served)`);
    const real = await realpath(abs).catch((e) => {
      throw fsError(e, path);
    });
    if (!within(dir, real)) throw new ModelStoreError('unavailable', `path ${path} escapes the model directory`);
    if (!lst.isFile()) throw new ModelStoreError('not_found', `${path} is not a file`);
    return open(real, 'r').catch((e) => {
      throw fsError(e, path);
    });
  }
}

async function readExactly(fh: FileHandle, position: number, length: number, what: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await fh.read(buf, off, length - off, position + off).catch((e) => {
      throw fsError(e, what);
    });
    if (bytesRead === 0) throw new ModelStoreError('unavailable', `${what} changed while reading (short read)`);
    off += bytesRead;
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face hub store
// ---------------------------------------------------------------------------------------------

export interface HfHubStoreOptions {
  /** `ALBEDO_HF_ENDPOINT`, e.g. `https://huggingface.co` (tests: the local hub). */
  readonly endpoint: string;
  /** `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN`; sent as a bearer token, never logged. */
  readonly token?: string;
  /** @default DEFAULT_HUB_TIMEOUT_MS */
  readonly timeoutMs?: number;
  /** For tests. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** 404 ⇒ not_found; 401/403/429/5xx and anything else unexpected ⇒ unavailable (spec §4.1). */
export function statusError(status: number, what: string): ModelStoreError {
  if (status === 404) return new ModelStoreError('not_found', `${what}: HTTP 404`, status);
  return new ModelStoreError('unavailable', `${what}: HTTP ${status}`, status);
}

/** Reads a response body, refusing more than `max` bytes (the stream is cancelled past the cap). */
export async function readBodyCapped(res: Response, max: number, what: string): Promise<Uint8Array> {
  const body = await readBoundedBody(res, max);
  if (body === null) throw new ModelStoreError('too_large', `${what} exceeds ${max} bytes`);
  return body;
}

function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(part);
    if (m?.[1]) return m[1];
  }
  return null;
}

/**
 * The Hugging Face hub HTTP API: `GET /api/models/<repo>/tree/<revision>?recursive=true` (file
 * listing, paginated by `Link: rel="next"`) and `GET /<repo>/resolve/<revision>/<path>` with
 * `Range` (must answer 206). Redirects are followed; every request has a timeout.
 */
export class HfHubStore implements ModelStore {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HfHubStoreOptions) {
    let u: URL;
    try {
      u = new URL(options.endpoint);
    } catch {
      throw new TypeError(`hub endpoint is not a URL: ${String(options.endpoint).slice(0, 120)}`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`hub endpoint must be http(s): ${u.origin}`);
    this.endpoint = u.toString().replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HUB_TIMEOUT_MS;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  resolveUrl(ref: ModelRef, path: string): string {
    return `${this.endpoint}/${encodePath(ref.repo)}/resolve/${encodeURIComponent(ref.digest)}/${encodePath(path)}`;
  }

  async listFiles(ref: ModelRef, signal: AbortSignal): Promise<StoreFile[]> {
    const origin = new URL(this.endpoint).origin;
    let url: string | null = `${this.endpoint}/api/models/${encodePath(ref.repo)}/tree/${encodeURIComponent(ref.digest)}?recursive=true`;
    const out: StoreFile[] = [];
    for (let page = 0; url; page++) {
      if (page >= MAX_LISTING_PAGES) throw new ModelStoreError('too_large', `file listing has more than ${MAX_LISTING_PAGES} pages`);
      const res = await this.request(url, {}, signal, `listing ${ref.uri}`);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw statusError(res.status, `listing ${ref.uri}`);
      }
      const body = await this.withTimeoutMessage(readBodyCapped(res, MAX_LISTING_BYTES, `listing of ${ref.uri}`), signal, `listing ${ref.uri}`);
      let entries: unknown;
      try {
        entries = parseJsonBytes(body, `listing of ${ref.uri}`);
      } catch {
        throw new ModelStoreError('unavailable', `listing of ${ref.uri}: hub answered with invalid JSON`);
      }
      if (!Array.isArray(entries)) throw new ModelStoreError('unavailable', `listing of ${ref.uri}: hub answered with a non-array`);
      for (const e of entries) {
        if (typeof e !== 'object' || e === null) throw new ModelStoreError('unavailable', `listing of ${ref.uri}: malformed entry`);
        const entry = e as { type?: unknown; path?: unknown; size?: unknown; lfs?: unknown };
        if (entry.type === 'directory') continue;
        if (entry.type !== 'file' || typeof entry.path !== 'string' || typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
          throw new ModelStoreError('unavailable', `listing of ${ref.uri}: malformed entry`);
        }
        if (out.length >= MAX_LISTED_FILES) throw new ModelStoreError('too_large', `repository lists more than ${MAX_LISTED_FILES} files`);
        const lfsOid = typeof entry.lfs === 'object' && entry.lfs !== null ? (entry.lfs as { oid?: unknown; sha256?: unknown }) : undefined;
        const sha = lfsOid?.sha256 ?? lfsOid?.oid;
        out.push(typeof sha === 'string' && SHA256_HEX.test(sha) ? { path: entry.path, size: entry.size, sha256: sha } : { path: entry.path, size: entry.size });
      }
      const next = nextLink(res.headers.get('link'));
      url = null;
      if (next) {
        const resolved = new URL(next, this.endpoint);
        if (resolved.origin !== origin) throw new ModelStoreError('unavailable', `listing of ${ref.uri}: refusing a next page on another origin`);
        url = resolved.toString();
      }
    }
    return out;
  }

  async readJson(ref: ModelRef, path: string, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    checkPath(path);
    const what = `${path} of ${ref.uri}`;
    const res = await this.request(this.resolveUrl(ref, path), {}, signal, `downloading ${what}`);
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw statusError(res.status, `downloading ${what}`);
    }
    const bytes = await this.withTimeoutMessage(readBodyCapped(res, maxBytes, path), signal, `downloading ${what}`);
    return parseJsonBytes(bytes, path);
  }

  async readRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): Promise<Uint8Array> {
    checkPath(path);
    checkRange(start, end);
    const url = this.resolveUrl(ref, path);
    const res = await this.request(url, { Range: `bytes=${start}-${end}` }, signal, `reading ${path} of ${ref.uri}`);
    if (res.status !== 206) {
      await res.body?.cancel().catch(() => {});
      if (res.status === 200) throw new ModelStoreError('unavailable', `server did not honor Range (status 200) for ${url}`, 200);
      throw statusError(res.status, `reading ${path} of ${ref.uri}`);
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (range && (Number(range[1]) !== start || Number(range[2]) !== end)) {
      await res.body?.cancel().catch(() => {});
      throw new ModelStoreError('unavailable', `server answered range ${range[1]}-${range[2]} for requested ${start}-${end} (${url})`, 206);
    }
    const want = end - start + 1;
    const bytes = await this.withTimeoutMessage(readBodyCapped(res, want, `range of ${path}`), signal, `reading ${path} of ${ref.uri}`);
    if (bytes.byteLength !== want) throw new ModelStoreError('unavailable', `short range read of ${path}: ${bytes.byteLength} of ${want} bytes`, 206);
    return bytes;
  }

  async *openRange(ref: ModelRef, path: string, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    checkPath(path);
    checkRange(start, end);
    const url = this.resolveUrl(ref, path);
    const what = `reading ${path} of ${ref.uri}`;
    const h: Record<string, string> = { Range: `bytes=${start}-${end}`, 'User-Agent': 'albedo-validator' };
    if (this.options.token) h.Authorization = `Bearer ${this.options.token}`;
    const res = await fetchHeadersWithTimeout(this.fetchImpl, url, { headers: h, redirect: 'follow' }, signal, this.timeoutMs, what);
    yield* streamRangeBody(res, url, start, end, signal, what);
  }

  private async request(url: string, headers: Record<string, string>, signal: AbortSignal, what: string): Promise<Response> {
    const h: Record<string, string> = { ...headers, 'User-Agent': 'albedo-validator' };
    if (this.options.token) h.Authorization = `Bearer ${this.options.token}`;
    try {
      return await this.fetchImpl(url, { headers: h, redirect: 'follow', signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) });
    } catch (error) {
      throw this.transportError(error, signal, what);
    }
  }

  /** Body reads share the request's signal; this only turns their failures into store errors. */
  private async withTimeoutMessage<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
    try {
      return await p;
    } catch (error) {
      if (error instanceof ModelStoreError) throw error;
      throw this.transportError(error, signal, what);
    }
  }

  private transportError(error: unknown, signal: AbortSignal, what: string): ModelStoreError {
    if (signal.aborted) return abortError(signal, what);
    const name = (error as { name?: string } | undefined)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') return new ModelStoreError('unavailable', `${what}: timed out after ${this.timeoutMs} ms`);
    const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const detail = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
    return new ModelStoreError('unavailable', `${what}: transport error (${detail})`, undefined, { cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// Shared HTTP helpers (also used by the Hippius store)
// ---------------------------------------------------------------------------------------------

/** Maps a fetch/body failure to `unavailable` (the caller's abort keeps its reason). */
export function transportStoreError(error: unknown, signal: AbortSignal, what: string, timeoutMs: number): ModelStoreError {
  if (error instanceof ModelStoreError) return error;
  if (signal.aborted) return abortError(signal, what);
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return new ModelStoreError('unavailable', `${what}: timed out after ${timeoutMs} ms`);
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const detail = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return new ModelStoreError('unavailable', `${what}: transport error (${detail})`, undefined, { cause: error });
}

/**
 * `fetch` whose timeout covers only the wait for the response headers; the body stays bound to
 * `signal` alone (streaming reads are watched by the downloader's stall watchdog instead).
 */
export async function fetchHeadersWithTimeout(
  fetchImpl: typeof fetch,
  url: string,
  init: Omit<RequestInit, 'signal'>,
  signal: AbortSignal,
  timeoutMs: number,
  what: string,
): Promise<Response> {
  const headerDeadline = new AbortController();
  const timer = setTimeout(() => headerDeadline.abort(new DOMException('header timeout', 'TimeoutError')), timeoutMs);
  try {
    return await fetchImpl(url, { ...init, signal: AbortSignal.any([signal, headerDeadline.signal]) });
  } catch (error) {
    throw transportStoreError(error, signal, what, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Streams the body of a Range response: requires 206 and a matching `Content-Range` (when sent),
 * yields exactly `end − start + 1` bytes or throws `unavailable` (short, long, or broken body).
 */
export async function* streamRangeBody(res: Response, url: string, start: number, end: number, signal: AbortSignal, what: string): AsyncIterable<Uint8Array> {
  if (res.status !== 206) {
    await res.body?.cancel().catch(() => {});
    if (res.status === 200) throw new ModelStoreError('unavailable', `server did not honor Range (status 200) for ${url}`, 200);
    throw statusError(res.status, what);
  }
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
  if (range && (Number(range[1]) !== start || Number(range[2]) !== end)) {
    await res.body?.cancel().catch(() => {});
    throw new ModelStoreError('unavailable', `server answered range ${range[1]}-${range[2]} for requested ${start}-${end} (${url})`, 206);
  }
  const want = end - start + 1;
  if (!res.body) throw new ModelStoreError('unavailable', `${what}: empty range body`, 206);
  const reader = res.body.getReader();
  let got = 0;
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (error) {
        throw transportStoreError(error, signal, what, 0);
      }
      if (step.done) break;
      got += step.value.byteLength;
      if (got > want) throw new ModelStoreError('unavailable', `${what}: server sent more than the ${want} requested bytes`, 206);
      yield step.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  if (got !== want) throw new ModelStoreError('unavailable', `short range read (${what}): ${got} of ${want} bytes`, 206);
}
