/**
 * Object storage for artifacts (spec/pipeline.md §8 `artifacts`, §9 item 25; spec/config.md S3 rows).
 *
 * Two backends behind one interface: {@link S3ArtifactStore} (any S3-compatible endpoint: Hippius,
 * R2, MinIO, the in-process `s3rver` stand-in) and {@link LocalDirArtifactStore} (`file://` URIs, for
 * tests and a bucket-less dev setup). Artifacts are immutable: a put of the same bytes at the same key
 * is a no-op, different bytes at an existing key are a `conflict`. Every object is one PUT capped at
 * {@link MAX_ARTIFACT_OBJECT_BYTES}, so no multipart upload is needed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { abortableSleep } from '../core/io.ts';
import { compareCodePoints } from '../core/py-compat.ts';

// ── types ───────────────────────────────────────────────────────────────────────────────────────

/** `artifacts.artifact_type` (persistence/migrations/001_pipeline.sql CHECK list). */
export const ARTIFACT_TYPE_VALUES = [
  'MODEL_MANIFEST', 'GUARD_DETECTION', 'VALIDATION_FAULT', 'SANITY_RESULT', 'EVAL_REQUEST', 'EVAL_VERDICT',
  'GENERATED_SAMPLES', 'EVAL_TRANSCRIPT', 'SCORING_RESULTS', 'JUDGE_RESULTS', 'REMOTE_LOGS', 'REMOTE_PROGRESS', 'FINGERPRINT',
] as const;
export type ArtifactType = (typeof ARTIFACT_TYPE_VALUES)[number];

export function isArtifactType(value: unknown): value is ArtifactType {
  return typeof value === 'string' && (ARTIFACT_TYPE_VALUES as readonly string[]).includes(value);
}

/**
 * `ALBEDO_PUBLIC_ARTIFACT_TYPES` default (spec/config.md): the types uploaded public-read. Requests,
 * manifests, guard detections and fingerprints stay private: requests carry the judge configuration
 * and probe prompts are never published (spec/pipeline.md §9 item 25).
 */
export const DEFAULT_PUBLIC_ARTIFACT_TYPES: readonly ArtifactType[] = [
  'EVAL_VERDICT', 'SCORING_RESULTS', 'JUDGE_RESULTS', 'GENERATED_SAMPLES', 'EVAL_TRANSCRIPT', 'REMOTE_PROGRESS',
  'REMOTE_LOGS', 'VALIDATION_FAULT', 'SANITY_RESULT',
];

/**
 * Largest object accepted by `put` and, by default, by `get`. One PUT carries the whole body (S3 allows
 * 5 GiB; we hold it in memory), so the cap keeps memory bounded and multipart unnecessary. It matches
 * the replay's per-file cap (judge/replay.ts MAX_ARTIFACT_BYTES). @default 268435456 (256 MiB)
 */
export const MAX_ARTIFACT_OBJECT_BYTES = 256 * 1024 * 1024;
/** S3's own key limit (UTF-8 bytes). @default 1024 */
export const MAX_ARTIFACT_KEY_BYTES = 1024;
/** Longest key segment; local filesystems refuse names above 255 bytes. @default 255 */
export const MAX_ARTIFACT_KEY_SEGMENT_BYTES = 255;
/** Deepest directory tree `putDirectory` walks. @default 8 */
export const MAX_PUT_DIRECTORY_DEPTH = 8;
/** Most files `putDirectory` uploads in one call (a spool dir has 8). @default 1000 */
export const MAX_PUT_DIRECTORY_FILES = 1000;
/** Attempts per S3 request (first try included) for transient errors. @default 4 */
export const DEFAULT_S3_MAX_ATTEMPTS = 4;
/** First retry delay; doubles per attempt with full jitter, capped at 5 s. @default 200 */
export const DEFAULT_S3_BACKOFF_BASE_MS = 200;
/** Per-request socket timeout, so a hung endpoint becomes a retryable `unavailable`. @default 60000 */
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 60_000;
/** `ALBEDO_S3_ENDPOINT` default. */
export const DEFAULT_S3_ENDPOINT = 'https://s3.hippius.com';
/** `ALBEDO_S3_REGION` default (`auto` for R2 endpoints, see {@link defaultRegionFor}). */
export const DEFAULT_S3_REGION = 'decentralized';
/**
 * Path-style addressing (`<endpoint>/<bucket>/<key>`). S3-compatible services (Hippius, MinIO, s3rver)
 * do not serve virtual-host buckets on a custom endpoint. @default true
 */
export const DEFAULT_S3_FORCE_PATH_STYLE = true;
/** `ALBEDO_DASHBOARD_ARTIFACT_BASE_URL` default. */
export const DEFAULT_DASHBOARD_ARTIFACT_BASE_URL = 'https://s3.hippius.com';

export interface ArtifactPutOptions {
  readonly contentType: string;
  readonly artifactType: ArtifactType;
  /** Extra object metadata (`x-amz-meta-*`), e.g. `{eval_run_id, artifact_name}`. `sha256` is always set. */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Replace different bytes at the key instead of failing with `conflict`. Only for documents whose
   * key names a latest state rather than one immutable object (the per-(hotkey, digest) `fault.json`
   * of spec/validation.md §10). @default false
   */
  readonly replace?: boolean;
}

/** What was stored; the fields of an `artifacts` row. */
export interface ArtifactRecord {
  /** `s3://<bucket>/<key>` or `file:///…`. */
  readonly uri: string;
  /** Null for the local store (no bucket). */
  readonly bucket: string | null;
  readonly objectKey: string;
  /** `sha256:<64 lowercase hex>` of the bytes (the form duel.md §10 `artifact_metadata` uses). */
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly contentType: string;
  readonly artifactType: ArtifactType;
  /** Uploaded public-read (always false for the local store, which has no public access). */
  readonly public: boolean;
  /** False when identical bytes were already stored at the key (idempotent re-put). */
  readonly uploaded: boolean;
}

export interface ArtifactHead {
  readonly sizeBytes: number;
  /** From the object metadata (S3) or computed (local); null when an S3 object carries none. */
  readonly sha256: string | null;
  readonly contentType: string | null;
}

export interface PutDirectoryOptions {
  /** Artifact type of a file (path relative to the directory, `/`-separated); null skips the file. */
  readonly artifactTypeOf: (relPath: string) => ArtifactType | null;
  /** @default by extension, see {@link contentTypeOfName} */
  readonly contentTypeOf?: (relPath: string) => string;
  /** Extra object metadata per file. @default none */
  readonly metadataOf?: (relPath: string) => Readonly<Record<string, string>>;
  /** Uploaded last, in this order (e.g. `verdict.json`, which lists the others). @default [] */
  readonly last?: readonly string[];
}

export interface ArtifactStore {
  readonly kind: 's3' | 'local';
  /** Stores `body` at `key` (idempotent for identical bytes; `conflict` otherwise). */
  put(key: string, body: Uint8Array | string, options: ArtifactPutOptions): Promise<ArtifactRecord>;
  /** Reads an object of this store; `too_large` above `maxBytes` (@default MAX_ARTIFACT_OBJECT_BYTES). */
  get(uri: string, options?: { readonly maxBytes?: number }): Promise<Uint8Array>;
  /** Size, sha256 and content type of an object; null when it does not exist. */
  head(uri: string): Promise<ArtifactHead | null>;
  /**
   * Uploads every regular file under `dir` to `<prefix>/<relative path>` (code-point order, `last`
   * files at the end). Symlinks and other non-regular entries are refused (`invalid_key`) before
   * anything is uploaded.
   */
  putDirectory(prefix: string, dir: string, options: PutDirectoryOptions): Promise<ArtifactRecord[]>;
  /** The dashboard URL of an object, or null when it has none (spec/dashboard.md §5). */
  publicUrl(uri: string): string | null;
  /** The URI an object at `key` has (or would have) in this store. */
  uriOf(key: string): string;
}

// ── errors ──────────────────────────────────────────────────────────────────────────────────────

export const ARTIFACT_STORE_ERROR_CODES = ['not_found', 'unavailable', 'conflict', 'too_large', 'invalid_key', 'config'] as const;
export type ArtifactStoreErrorCode = (typeof ARTIFACT_STORE_ERROR_CODES)[number];

/**
 * The one error of this boundary. `unavailable` is the only code worth retrying later (the store
 * already retried transient failures). Messages never contain credentials; the SDK error is not kept
 * as `cause` because its request metadata would carry them into logs.
 */
export class ArtifactStoreError extends Error {
  override readonly name = 'ArtifactStoreError';
  constructor(
    readonly code: ArtifactStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isArtifactStoreError(value: unknown, code?: ArtifactStoreErrorCode): value is ArtifactStoreError {
  return value instanceof ArtifactStoreError && (code === undefined || value.code === code);
}

// ── keys and URIs ───────────────────────────────────────────────────────────────────────────────

const KEY_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._=+-]*$/;
/** S3 bucket naming rules (3–63 chars, lowercase, digits, dots, hyphens). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function clip(s: string, n = 120): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/**
 * Throws `invalid_key` unless `key` is a safe relative object key: `/`-separated segments of
 * `[A-Za-z0-9_][A-Za-z0-9._=+-]*` (so no `..`, `.`, empty segment, leading `/`, backslash, control or
 * non-ASCII characters), at most {@link MAX_ARTIFACT_KEY_BYTES} bytes. Keys become local paths too.
 */
export function validateArtifactKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new ArtifactStoreError('invalid_key', 'artifact key is empty');
  if (Buffer.byteLength(key) > MAX_ARTIFACT_KEY_BYTES) throw new ArtifactStoreError('invalid_key', `artifact key is longer than ${MAX_ARTIFACT_KEY_BYTES} bytes`);
  for (const segment of key.split('/')) {
    if (segment.length > MAX_ARTIFACT_KEY_SEGMENT_BYTES || !KEY_SEGMENT.test(segment)) {
      throw new ArtifactStoreError('invalid_key', `invalid artifact key ${JSON.stringify(clip(key))}: segment ${JSON.stringify(clip(segment, 40))} is not [A-Za-z0-9_][A-Za-z0-9._=+-]{0,254}`);
    }
  }
  return key;
}

/** Joins key parts with `/` and validates the result. */
export function joinArtifactKey(...parts: readonly string[]): string {
  return validateArtifactKey(parts.filter((p) => p !== '').join('/'));
}

export function isValidBucketName(bucket: string): boolean {
  return BUCKET_NAME.test(bucket) && !bucket.includes('..');
}

/** `s3://<bucket>/<key>` ⇒ its parts; throws `invalid_key` for anything else. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m || !isValidBucketName(m[1]!)) throw new ArtifactStoreError('invalid_key', `not an s3://<bucket>/<key> uri: ${JSON.stringify(clip(uri))}`);
  return { bucket: m[1]!, key: validateArtifactKey(m[2]!) };
}

export interface PublicUrlOptions {
  /** `ALBEDO_DASHBOARD_ARTIFACT_BASE_URL`. @default DEFAULT_DASHBOARD_ARTIFACT_BASE_URL */
  readonly baseUrl?: string;
  /** `ALBEDO_DASHBOARD_BASE_INCLUDES_BUCKET`: the base is bucket-bound, drop the bucket segment. @default false */
  readonly baseIncludesBucket?: boolean;
}

/**
 * spec/dashboard.md §5: `s3://<bucket>/<key>` ⇒ `<base>/<bucket>/<key>` (or `<base>/<key>` when the
 * base includes the bucket); `http(s)://` unchanged; anything else (local, `hf://`, registry refs) ⇒ null.
 */
export function publicArtifactUrl(uri: string, options: PublicUrlOptions = {}): string | null {
  if (/^https?:\/\//.test(uri)) return uri;
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) return null;
  const base = (options.baseUrl ?? DEFAULT_DASHBOARD_ARTIFACT_BASE_URL).replace(/\/+$/, '');
  const key = m[2]!.split('/').map(encodeURIComponent).join('/');
  return options.baseIncludesBucket ? `${base}/${key}` : `${base}/${m[1]!}/${key}`;
}

/** Default content type of a file name. */
export function contentTypeOfName(name: string): string {
  switch (extname(name).toLowerCase()) {
    case '.json':
      return 'application/json';
    case '.jsonl':
      return 'application/x-ndjson';
    case '.txt':
    case '.log':
      return 'text/plain; charset=utf-8';
    default:
      return 'application/octet-stream';
  }
}

export function sha256Tagged(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function checkSize(key: string, size: number): void {
  if (size > MAX_ARTIFACT_OBJECT_BYTES) throw new ArtifactStoreError('too_large', `artifact ${clip(key)} is ${size} bytes, above the ${MAX_ARTIFACT_OBJECT_BYTES}-byte cap`);
}

function conflict(uri: string, existing: string | null, wanted: string): ArtifactStoreError {
  return new ArtifactStoreError('conflict', `artifact ${clip(uri)} already exists with ${existing ?? 'unknown content'}, refusing to overwrite it with ${wanted} (artifacts are immutable)`);
}

interface DirFile {
  readonly relPath: string;
  readonly absPath: string;
}

/** Lists the regular files under `dir` (refusing symlinks, devices, over-deep trees, too many files). */
async function listDirectoryFiles(dir: string): Promise<DirFile[]> {
  const root = resolve(dir);
  const out: DirFile[] = [];
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > MAX_PUT_DIRECTORY_DEPTH) throw new ArtifactStoreError('invalid_key', `${clip(rel)} is nested deeper than ${MAX_PUT_DIRECTORY_DEPTH} levels`);
    const entries = await readdir(abs, { withFileTypes: true });
    for (const entry of entries) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const childAbs = join(abs, entry.name);
      if (entry.isSymbolicLink()) throw new ArtifactStoreError('invalid_key', `refusing to upload symlink ${clip(childRel)}`);
      if (entry.isDirectory()) await walk(childAbs, childRel, depth + 1);
      else if (entry.isFile()) {
        out.push({ relPath: childRel, absPath: childAbs });
        if (out.length > MAX_PUT_DIRECTORY_FILES) throw new ArtifactStoreError('invalid_key', `${clip(dir)} holds more than ${MAX_PUT_DIRECTORY_FILES} files`);
      } else throw new ArtifactStoreError('invalid_key', `refusing to upload ${clip(childRel)}: not a regular file`);
    }
  };
  const st = await lstat(root).catch(() => null);
  if (!st?.isDirectory()) throw new ArtifactStoreError('not_found', `${clip(dir)} is not a directory`);
  await walk(root, '', 0);
  return out;
}

/** Reads a regular file (refusing symlinks swapped in after the listing), capped. */
async function readRegularFile(path: string, maxBytes: number, label: string): Promise<Uint8Array> {
  const st = await lstat(path).catch(() => null);
  if (!st) throw new ArtifactStoreError('not_found', `${clip(label)} does not exist`);
  if (!st.isFile()) throw new ArtifactStoreError('invalid_key', `refusing to read ${clip(label)}: not a regular file`);
  if (st.size > maxBytes) throw new ArtifactStoreError('too_large', `${clip(label)} is ${st.size} bytes, above the ${maxBytes}-byte cap`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    // A file that grew since lstat: refuse instead of returning a silently truncated body.
    const more = await fh.read(Buffer.alloc(1), 0, 1, off);
    if (more.bytesRead > 0) throw new ArtifactStoreError('too_large', `${clip(label)} changed while being read`);
    return off === st.size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** Files in code-point order of their relative path, then `last` in the given order. */
function uploadOrder(files: readonly DirFile[], last: readonly string[]): DirFile[] {
  const sorted = [...files].sort((a, b) => compareCodePoints(a.relPath, b.relPath));
  const rank = (f: DirFile) => last.indexOf(f.relPath);
  return [...sorted.filter((f) => rank(f) < 0), ...last.flatMap((name) => sorted.filter((f) => f.relPath === name))];
}

async function putDirectoryVia(store: ArtifactStore, prefix: string, dir: string, options: PutDirectoryOptions): Promise<ArtifactRecord[]> {
  const files = await listDirectoryFiles(dir);
  // Validate every key and type before the first upload, so a bad tree uploads nothing.
  const plan = uploadOrder(files, options.last ?? []).flatMap((f) => {
    const artifactType = options.artifactTypeOf(f.relPath);
    return artifactType === null ? [] : [{ ...f, artifactType, key: joinArtifactKey(prefix, f.relPath) }];
  });
  const records: ArtifactRecord[] = [];
  for (const f of plan) {
    const bytes = await readRegularFile(f.absPath, MAX_ARTIFACT_OBJECT_BYTES, f.relPath);
    records.push(
      await store.put(f.key, bytes, {
        artifactType: f.artifactType,
        contentType: options.contentTypeOf?.(f.relPath) ?? contentTypeOfName(f.relPath),
        ...(options.metadataOf ? { metadata: options.metadataOf(f.relPath) } : {}),
      }),
    );
  }
  return records;
}

// ── local directory backend ─────────────────────────────────────────────────────────────────────

/**
 * Stores artifacts as files under `root` (`file://` URIs, `storage_backend = local-cache`). Writes go
 * to a temp file in the target directory and are published with `link()`, which fails when the name
 * exists: two writers can never both "create" a key, and a reader never sees a partial file.
 */
export class LocalDirArtifactStore implements ArtifactStore {
  readonly kind = 'local' as const;
  readonly root: string;
  private readonly publicUrlOptions: PublicUrlOptions;

  constructor(root: string, options: { readonly publicUrl?: PublicUrlOptions } = {}) {
    this.root = resolve(root);
    this.publicUrlOptions = options.publicUrl ?? {};
  }

  uriOf(key: string): string {
    return pathToFileURL(join(this.root, ...validateArtifactKey(key).split('/'))).href;
  }

  /** The path of a `file://` URI of this store; refuses URIs outside the root. */
  private pathOf(uri: string): { path: string; key: string } {
    let path: string;
    try {
      path = resolve(fileURLToPath(uri));
    } catch {
      throw new ArtifactStoreError('invalid_key', `not a file:// uri: ${JSON.stringify(clip(uri))}`);
    }
    if (!path.startsWith(this.root + sep)) throw new ArtifactStoreError('invalid_key', `${JSON.stringify(clip(uri))} is outside the artifact root`);
    const key = path.slice(this.root.length + 1).split(sep).join('/');
    validateArtifactKey(key);
    return { path, key };
  }

  async put(key: string, body: Uint8Array | string, options: ArtifactPutOptions): Promise<ArtifactRecord> {
    validateArtifactKey(key);
    const bytes = toBytes(body);
    checkSize(key, bytes.byteLength);
    const uri = this.uriOf(key);
    const { path } = this.pathOf(uri);
    const sha256 = sha256Tagged(bytes);
    const record = (uploaded: boolean): ArtifactRecord => ({
      uri, bucket: null, objectKey: key, sha256, sizeBytes: bytes.byteLength, contentType: options.contentType, artifactType: options.artifactType, public: false, uploaded,
    });
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes, { flag: 'wx' });
    try {
      if (options.replace) {
        const existing = await this.head(uri);
        if (existing?.sha256 === sha256) return record(false);
        await rename(tmp, path);
        return record(true);
      }
      await link(tmp, path);
      return record(true);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const existing = sha256Tagged(await readRegularFile(path, MAX_ARTIFACT_OBJECT_BYTES, key));
      if (existing !== sha256) throw conflict(uri, existing, sha256);
      return record(false);
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  async get(uri: string, options: { readonly maxBytes?: number } = {}): Promise<Uint8Array> {
    const { path, key } = this.pathOf(uri);
    return readRegularFile(path, options.maxBytes ?? MAX_ARTIFACT_OBJECT_BYTES, key);
  }

  async head(uri: string): Promise<ArtifactHead | null> {
    const { path, key } = this.pathOf(uri);
    try {
      const bytes = await readRegularFile(path, MAX_ARTIFACT_OBJECT_BYTES, key);
      return { sizeBytes: bytes.byteLength, sha256: sha256Tagged(bytes), contentType: contentTypeOfName(key) };
    } catch (error) {
      if (isArtifactStoreError(error, 'not_found')) return null;
      throw error;
    }
  }

  putDirectory(prefix: string, dir: string, options: PutDirectoryOptions): Promise<ArtifactRecord[]> {
    return putDirectoryVia(this, prefix, dir, options);
  }

  publicUrl(uri: string): string | null {
    return publicArtifactUrl(uri, this.publicUrlOptions);
  }
}

// ── S3 backend ──────────────────────────────────────────────────────────────────────────────────

export interface S3ArtifactStoreOptions {
  /** `ALBEDO_S3_ENDPOINT`. @default DEFAULT_S3_ENDPOINT */
  readonly endpoint?: string;
  /** `ALBEDO_S3_BUCKET`. */
  readonly bucket: string;
  /** `ALBEDO_S3_ACCESS_KEY`. */
  readonly accessKeyId: string;
  /** `ALBEDO_S3_SECRET_KEY`. Never printed. */
  readonly secretAccessKey: string;
  /** `ALBEDO_S3_REGION`. @default defaultRegionFor(endpoint) */
  readonly region?: string;
  /** @default DEFAULT_S3_FORCE_PATH_STYLE */
  readonly forcePathStyle?: boolean;
  /** `ALBEDO_PUBLIC_ARTIFACT_TYPES`. @default DEFAULT_PUBLIC_ARTIFACT_TYPES */
  readonly publicArtifactTypes?: readonly ArtifactType[];
  /** @default DEFAULT_S3_MAX_ATTEMPTS */
  readonly maxAttempts?: number;
  /** @default DEFAULT_S3_BACKOFF_BASE_MS */
  readonly backoffBaseMs?: number;
  /** @default DEFAULT_S3_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** Dashboard URL rewriting. @default spec defaults */
  readonly publicUrl?: PublicUrlOptions;
}

/** `auto` for Cloudflare R2 endpoints (spec/config.md), else {@link DEFAULT_S3_REGION}. */
export function defaultRegionFor(endpoint: string): string {
  try {
    return new URL(endpoint).hostname.endsWith('.r2.cloudflarestorage.com') ? 'auto' : DEFAULT_S3_REGION;
  } catch {
    return DEFAULT_S3_REGION;
  }
}

interface SdkErrorLike {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'InternalError', 'ServiceUnavailable', 'Throttling', 'ThrottlingException']);
const TRANSIENT_NET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

function statusOf(error: unknown): number | undefined {
  return (error as SdkErrorLike | null)?.$metadata?.httpStatusCode;
}

function isTransient(error: unknown): boolean {
  const e = error as SdkErrorLike | null;
  const status = statusOf(error);
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
  if (e?.name && TRANSIENT_NAMES.has(e.name)) return true;
  return typeof e?.code === 'string' && TRANSIENT_NET_CODES.has(e.code);
}

function isNotFound(error: unknown): boolean {
  const name = (error as SdkErrorLike | null)?.name;
  // A HEAD of a missing bucket is also a bare 404 (no body to name it): reported as not_found.
  if (name === 'NoSuchBucket') return false;
  return statusOf(error) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/**
 * S3 through `@aws-sdk/client-s3`. The SDK's own retries are off (`maxAttempts: 1`) so that this
 * class alone decides what is transient (5xx, 429, timeouts, socket errors) and how long to back off;
 * 4xx answers (auth, missing bucket) fail at once. Checksums are only sent when an operation requires
 * them: the SDK's default CRC32 trailers are not understood by every S3-compatible service.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly endpoint: string;
  readonly publicArtifactTypes: ReadonlySet<ArtifactType>;
  // Private fields are invisible to util.inspect and JSON, so the credentials inside the client never print.
  readonly #client: S3Client;
  readonly #secret: string;
  readonly #maxAttempts: number;
  readonly #backoffBaseMs: number;
  readonly #publicUrl: PublicUrlOptions;

  constructor(options: S3ArtifactStoreOptions) {
    const endpoint = options.endpoint ?? DEFAULT_S3_ENDPOINT;
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new ArtifactStoreError('config', 'ALBEDO_S3_ENDPOINT is not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ArtifactStoreError('config', 'ALBEDO_S3_ENDPOINT must be an http(s) URL');
    if (url.username || url.password) throw new ArtifactStoreError('config', 'ALBEDO_S3_ENDPOINT must not embed credentials');
    if (!isValidBucketName(options.bucket)) throw new ArtifactStoreError('config', `ALBEDO_S3_BUCKET ${JSON.stringify(clip(options.bucket, 70))} is not a valid bucket name`);
    if (!options.accessKeyId || !options.secretAccessKey) throw new ArtifactStoreError('config', 'ALBEDO_S3_ACCESS_KEY and ALBEDO_S3_SECRET_KEY are required');
    this.bucket = options.bucket;
    this.endpoint = url.origin + url.pathname.replace(/\/+$/, '');
    this.publicArtifactTypes = new Set(options.publicArtifactTypes ?? DEFAULT_PUBLIC_ARTIFACT_TYPES);
    this.#secret = options.secretAccessKey;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? DEFAULT_S3_MAX_ATTEMPTS);
    this.#backoffBaseMs = Math.max(0, options.backoffBaseMs ?? DEFAULT_S3_BACKOFF_BASE_MS);
    this.#publicUrl = options.publicUrl ?? {};
    const timeout = options.requestTimeoutMs ?? DEFAULT_S3_REQUEST_TIMEOUT_MS;
    this.#client = new S3Client({
      endpoint: this.endpoint,
      region: options.region ?? defaultRegionFor(endpoint),
      forcePathStyle: options.forcePathStyle ?? DEFAULT_S3_FORCE_PATH_STYLE,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: timeout, connectionTimeout: Math.min(timeout, 10_000) },
    });
  }

  [inspect.custom](): string {
    return `S3ArtifactStore { endpoint: ${this.endpoint}, bucket: ${this.bucket} }`;
  }

  toJSON(): Record<string, string> {
    return { kind: this.kind, endpoint: this.endpoint, bucket: this.bucket };
  }

  /** Releases the HTTP agent's sockets. */
  close(): void {
    this.#client.destroy();
  }

  uriOf(key: string): string {
    return `s3://${this.bucket}/${validateArtifactKey(key)}`;
  }

  private keyOf(uri: string): string {
    const { bucket, key } = parseS3Uri(uri);
    if (bucket !== this.bucket) throw new ArtifactStoreError('invalid_key', `${JSON.stringify(clip(uri))} is not in bucket ${this.bucket}`);
    return key;
  }

  /** A message safe to print: the SDK's text with the secret scrubbed, plus its name and HTTP status. */
  private describe(error: unknown): string {
    const e = error as SdkErrorLike | null;
    const status = statusOf(error);
    const raw = clip(String(e?.message ?? error), 300);
    // Scrub the secret if a server echoed it; a very short one would mangle ordinary words instead.
    const text = this.#secret.length >= 8 ? raw.split(this.#secret).join('***') : raw;
    return `${e?.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${text}`;
  }

  /** Runs one request with retries; maps the final error to an ArtifactStoreError. */
  private async send<T>(what: string, request: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (error instanceof ArtifactStoreError) throw error;
        if (isNotFound(error)) throw new ArtifactStoreError('not_found', `${what}: not found`);
        if (isTransient(error) && attempt < this.#maxAttempts) {
          // Full jitter: concurrent writers hitting the same throttled endpoint spread out.
          const cap = Math.min(5_000, this.#backoffBaseMs * 2 ** (attempt - 1));
          await abortableSleep(Math.random() * cap);
          continue;
        }
        const status = statusOf(error);
        const name = (error as SdkErrorLike | null)?.name;
        if (name === 'NoSuchBucket') throw new ArtifactStoreError('config', `${what}: bucket ${this.bucket} does not exist at ${this.endpoint}`);
        if (status === 401 || status === 403) {
          throw new ArtifactStoreError('unavailable', `${what}: ${this.endpoint} rejected the request (check ALBEDO_S3_ACCESS_KEY / ALBEDO_S3_SECRET_KEY and bucket permissions): ${this.describe(error)}`);
        }
        const tries = isTransient(error) ? ` after ${attempt} attempt${attempt === 1 ? '' : 's'}` : '';
        throw new ArtifactStoreError('unavailable', `${what} failed${tries}: ${this.describe(error)}`);
      }
    }
  }

  async head(uri: string): Promise<ArtifactHead | null> {
    return this.headKey(this.keyOf(uri));
  }

  private async headKey(key: string): Promise<ArtifactHead | null> {
    try {
      const res = await this.send(`HEAD ${this.uriOf(key)}`, () => this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { sizeBytes: Number(res.ContentLength ?? 0), sha256: res.Metadata?.sha256 ?? null, contentType: res.ContentType ?? null };
    } catch (error) {
      if (isArtifactStoreError(error, 'not_found')) return null;
      throw error;
    }
  }

  async put(key: string, body: Uint8Array | string, options: ArtifactPutOptions): Promise<ArtifactRecord> {
    validateArtifactKey(key);
    const bytes = toBytes(body);
    checkSize(key, bytes.byteLength);
    const uri = this.uriOf(key);
    const sha256 = sha256Tagged(bytes);
    const isPublic = this.publicArtifactTypes.has(options.artifactType);
    const record = (uploaded: boolean): ArtifactRecord => ({
      uri, bucket: this.bucket, objectKey: key, sha256, sizeBytes: bytes.byteLength, contentType: options.contentType, artifactType: options.artifactType, public: isPublic, uploaded,
    });
    // Immutability check first. Two concurrent writers of *different* bytes can still race past it
    // (S3 has no portable create-if-absent); keys embed run/attempt ids, so only a bug would do that.
    const existing = await this.headKey(key);
    if (existing) {
      let existingSha = existing.sha256;
      if (existingSha === null && existing.sizeBytes === bytes.byteLength) existingSha = sha256Tagged(await this.get(uri));
      if (existingSha === sha256) return record(false);
      if (!options.replace) throw conflict(uri, existingSha, sha256);
    }
    const metadata: Record<string, string> = { ...(options.metadata ?? {}), sha256 };
    await this.send(`PUT ${uri}`, () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: options.contentType,
          Metadata: metadata,
          ...(isPublic ? { ACL: 'public-read' as const } : {}),
        }),
      ),
    );
    return record(true);
  }

  async get(uri: string, options: { readonly maxBytes?: number } = {}): Promise<Uint8Array> {
    const key = this.keyOf(uri);
    const maxBytes = options.maxBytes ?? MAX_ARTIFACT_OBJECT_BYTES;
    return this.send(`GET ${uri}`, async () => {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const body = res.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
      if (res.ContentLength !== undefined && res.ContentLength > maxBytes) {
        body?.destroy?.();
        throw new ArtifactStoreError('too_large', `${clip(uri)} is ${res.ContentLength} bytes, above the ${maxBytes}-byte cap`);
      }
      if (!body) return new Uint8Array(0);
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const chunk of body) {
        total += chunk.byteLength;
        if (total > maxBytes) {
          body.destroy?.();
          throw new ArtifactStoreError('too_large', `${clip(uri)} is larger than the ${maxBytes}-byte cap`);
        }
        chunks.push(chunk);
      }
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    });
  }

  putDirectory(prefix: string, dir: string, options: PutDirectoryOptions): Promise<ArtifactRecord[]> {
    return putDirectoryVia(this, prefix, dir, options);
  }

  publicUrl(uri: string): string | null {
    return publicArtifactUrl(uri, this.#publicUrl);
  }
}

// ── configuration ───────────────────────────────────────────────────────────────────────────────

/**
 * Parses `ALBEDO_PUBLIC_ARTIFACT_TYPES`: unset ⇒ the spec default; an empty value ⇒ nothing public;
 * otherwise comma-separated known types (an unknown one is a `config` error, not silently private).
 */
export function parsePublicArtifactTypes(value: string | undefined): readonly ArtifactType[] {
  if (value === undefined) return DEFAULT_PUBLIC_ARTIFACT_TYPES;
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) {
    if (!isArtifactType(item)) throw new ArtifactStoreError('config', `ALBEDO_PUBLIC_ARTIFACT_TYPES: unknown artifact type ${JSON.stringify(clip(item, 40))}`);
  }
  return items as ArtifactType[];
}

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

export interface ArtifactStoreFromEnvOptions {
  /** Use a {@link LocalDirArtifactStore} at this directory instead of S3 (tests, bucket-less dev). */
  readonly localDir?: string;
  /**
   * Variable prefix read first, falling back to `ALBEDO_S3_` per variable (the GPU node passes
   * `ALBEDO_REMOTE_S3_`, spec/config.md). @default 'ALBEDO_S3_'
   */
  readonly envPrefix?: string;
  /** @default DEFAULT_S3_FORCE_PATH_STYLE */
  readonly forcePathStyle?: boolean;
  /** Retry tuning passed to the S3 store. */
  readonly maxAttempts?: number;
  readonly backoffBaseMs?: number;
}

/**
 * The artifact store the environment configures, or null when uploads are disabled: spec/config.md
 * says uploads are skipped when the bucket or keys are unset — the caller logs that once.
 * @example const store = artifactStoreFromEnv(process.env); if (!store) log.warn('artifact uploads disabled');
 */
export function artifactStoreFromEnv(env: Readonly<Record<string, string | undefined>>, options: ArtifactStoreFromEnvOptions = {}): ArtifactStore | null {
  const publicUrl: PublicUrlOptions = {
    baseUrl: env.ALBEDO_DASHBOARD_ARTIFACT_BASE_URL || DEFAULT_DASHBOARD_ARTIFACT_BASE_URL,
    baseIncludesBucket: envFlag(env.ALBEDO_DASHBOARD_BASE_INCLUDES_BUCKET),
  };
  if (options.localDir !== undefined) return new LocalDirArtifactStore(options.localDir, { publicUrl });
  const prefix = options.envPrefix ?? 'ALBEDO_S3_';
  const read = (name: string): string | undefined => {
    const own = env[`${prefix}${name}`];
    return own !== undefined && own !== '' ? own : env[`ALBEDO_S3_${name}`] || undefined;
  };
  const bucket = read('BUCKET');
  const accessKeyId = read('ACCESS_KEY');
  const secretAccessKey = read('SECRET_KEY');
  if (!bucket || !accessKeyId || !secretAccessKey) return null;
  const endpoint = read('ENDPOINT') ?? DEFAULT_S3_ENDPOINT;
  return new S3ArtifactStore({
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    region: read('REGION') ?? defaultRegionFor(endpoint),
    publicArtifactTypes: parsePublicArtifactTypes(env.ALBEDO_PUBLIC_ARTIFACT_TYPES),
    publicUrl,
    ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
  });
}
