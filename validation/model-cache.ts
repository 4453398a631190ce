import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { abortableSleep } from '../core/io.ts';
import { DownloadError, type DownloadProgress, downloadFile, sha256File } from './download.ts';
import { isValidRepo, type ModelRef } from './model-ref.ts';
import { isSafeRepoPath, type ModelStore, SHA256_HEX, type StoreFile } from './model-store.ts';

/**
 * The local model cache of spec/validation.md §5 (`ALBEDO_MODEL_CACHE_DIR`):
 *
 * ```
 * <root>/<backend>/<repo>/<digest with ':' → '_'>/        complete model (has the marker)
 * <root>/<backend>/<repo>/<digest…>.partial/              download in progress (never "complete")
 * <root>/<backend>/<repo>/<digest…>.lock                  cross-process lock: {"pid", "started_at"}
 * <root>/blobs/sha256/<hex>                               every file body, once (read-only)
 * ```
 *
 * **Content addressing.** Each downloaded file is hard-linked into `blobs/sha256/<hex>` and the
 * model directories hold hard links to those blobs, so a shard shared by two models (a fine-tune
 * that left a shard untouched, or the same weights under two repos) is stored and downloaded once:
 * when the store announces a sha256 that already has a blob, the file is linked, not fetched.
 * A blob whose link count drops to 1 is referenced by no model and is deleted by {@link ModelCache.gc}.
 * Blobs are chmod 0444 so nothing writes through a model directory into a shared body.
 *
 * **Completion.** Files go into `<path>.partial`; the marker `.albedo-model-cache.json`
 * (`{model_uri, files: {name: {size, sha256}}, completed_at}`) is written there last, then the
 * directory is renamed to `<path>` in one step, so a crash never leaves a directory that looks
 * complete. A later call resumes inside `.partial` (the downloader's part journals).
 *
 * **Concurrency.** In one process, concurrent `ensureModel` calls for one model share one download.
 * Across processes, `<path>.lock` is created with `O_EXCL` and holds the owner's pid; a lock whose pid
 * no longer runs is stale and taken over. A pid lock (not `flock`, which Node lacks) is enough
 * because a cache directory belongs to one host; it must not be shared over NFS by two hosts.
 *
 * **Eviction.** `gc` never evicts protected models (the caller passes the 5 kings, the genesis and
 * in-flight submissions), models leased in this process ({@link ModelCache.acquire}) or being
 * ensured/locked by any process; it evicts models unused for longer than the TTL, then the least
 * recently used until the blob bytes fit `maxBytes`. "Used" is the marker's mtime, touched by every
 * `ensureModel`. `gc` is meant to run in the one process that uses the cache (the worker): leases
 * of other processes are not visible to it, only their locks.
 */

export const MARKER_FILE = '.albedo-model-cache.json';
/** `ALBEDO_MODEL_TTL_MIN` (240) in ms. @default 14400000 */
export const DEFAULT_MODEL_TTL_MS = 240 * 60_000;
/** No size cap unless configured. @default Infinity */
export const DEFAULT_MAX_CACHE_BYTES = Number.POSITIVE_INFINITY;
/** Most files one cached model may have. @default 4096 */
export const MAX_CACHE_FILES = 4096;
/** Longest absolute path the cache creates. @default 4096 */
export const MAX_CACHE_PATH_LENGTH = 4096;
/** Largest marker file read back. @default 4 MiB */
export const MAX_MARKER_BYTES = 4 * 1024 * 1024;
/** Poll interval while another process holds a model's lock. @default 500 */
export const DEFAULT_LOCK_POLL_MS = 500;
/** Most directory entries `gc` scans. @default 200000 */
export const MAX_GC_ENTRIES = 200_000;

/** The small config files of step 6 (spec §5), downloaded too when `includeConfigs` is set. */
export const SMALL_CONFIG_FILES: readonly string[] = [
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'tokenizer_config.json',
  'tokenizer.json',
  'video_preprocessor_config.json',
  'chat_template.jinja',
  'model.safetensors.index.json',
];

export interface CacheMarker {
  readonly model_uri: string;
  readonly files: Readonly<Record<string, { readonly size: number; readonly sha256: string }>>;
  readonly completed_at: string;
}

/** The marker's per-file sha256 (verified while downloading): the fingerprint's `knownSha256`. */
export function markerSha256(marker: CacheMarker): Record<string, string> {
  return Object.fromEntries(Object.entries(marker.files).map(([name, f]) => [name, f.sha256]));
}

export type ModelCacheErrorCode = 'unsafe_path' | 'too_many_files' | 'disk' | 'aborted';

/** Cache-level failures that are not a download error (those surface as {@link DownloadError}). */
export class ModelCacheError extends Error {
  override readonly name = 'ModelCacheError';
  constructor(
    readonly code: ModelCacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ModelCacheOptions {
  /** `ALBEDO_MODEL_CACHE_DIR`. @default ~/.cache/albedo_models */
  readonly root?: string;
  /** Cap on blob bytes enforced by `gc`. @default DEFAULT_MAX_CACHE_BYTES */
  readonly maxBytes?: number;
  /** @default DEFAULT_MODEL_TTL_MS */
  readonly ttlMs?: number;
  /** @default DEFAULT_LOCK_POLL_MS */
  readonly lockPollMs?: number;
  /** Downloader tuning (part size, concurrency, backoff, progress interval). */
  readonly download?: {
    readonly partSize?: number;
    readonly concurrency?: number;
    readonly partRetries?: number;
    readonly backoffBaseMs?: number;
    readonly backoffMaxMs?: number;
    readonly progressIntervalMs?: number;
  };
}

export interface EnsureOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: DownloadProgress) => void;
  /** Stall watchdog (per backend from config: HF 180 s/3, Hippius 1200 s/2). */
  readonly stallMs?: number;
  readonly stallRetries?: number;
  /** Also cache the small config files of step 6. @default false */
  readonly includeConfigs?: boolean;
}

export interface EnsuredModel {
  readonly dir: string;
  readonly marker: CacheMarker;
}

export interface GcResult {
  readonly evicted: readonly string[];
  readonly blobsDeleted: number;
  readonly bytesAfter: number;
}

/** The files step 7 caches: `*.safetensors` + `model.safetensors.index.json` (+ small configs). */
export function selectCacheFiles(files: readonly StoreFile[], includeConfigs = false): StoreFile[] {
  return files.filter((f) => f.path.endsWith('.safetensors') || f.path === 'model.safetensors.index.json' || (includeConfigs && SMALL_CONFIG_FILES.includes(f.path)));
}

function within(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

/**
 * A repo segment that could alias a digest directory, a `.partial`/`.lock` sibling or a blob would
 * let one model's directory nest inside another's; such repos are refused.
 */
const RESERVED_SEGMENT = /^(?:sha256_[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{64})$|\.(?:partial|lock)$/;

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Process-wide state, keyed by absolute model path, so two `ModelCache` instances on one root in
 * one process still share downloads, see each other's leases and never take each other's lock
 * for a stale one.
 */
const INFLIGHT = new Map<string, Promise<EnsuredModel>>();
const LEASES = new Map<string, number>();
const HELD_LOCKS = new Set<string>();

function diskError(error: unknown, what: string): ModelCacheError {
  return new ModelCacheError('disk', `${what}: ${(error as Error | undefined)?.message ?? String(error)}`, { cause: error });
}

export class ModelCache {
  readonly root: string;
  readonly blobDir: string;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly lockPollMs: number;
  private readonly inflight = INFLIGHT;
  private readonly leases = LEASES;

  constructor(private readonly options: ModelCacheOptions = {}) {
    this.root = resolve(options.root ?? join(homedir(), '.cache', 'albedo_models'));
    this.blobDir = join(this.root, 'blobs', 'sha256');
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_CACHE_BYTES;
    this.ttlMs = options.ttlMs ?? DEFAULT_MODEL_TTL_MS;
    this.lockPollMs = options.lockPollMs ?? DEFAULT_LOCK_POLL_MS;
  }

  /** `<root>/<backend>/<repo>/<digest with ':' → '_'>`; throws `unsafe_path` if it would leave the root. */
  modelPath(ref: Pick<ModelRef, 'backend' | 'repo' | 'digest'>): string {
    if (ref.backend !== 'hippius' && ref.backend !== 'hf') throw new ModelCacheError('unsafe_path', `unknown backend ${String(ref.backend).slice(0, 40)}`);
    if (!isValidRepo(ref.repo) || ref.repo.split('/').some((s) => RESERVED_SEGMENT.test(s))) {
      throw new ModelCacheError('unsafe_path', `refusing repo ${JSON.stringify(ref.repo.slice(0, 120))} as a cache path`);
    }
    const component = ref.digest.replace(':', '_');
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(component) || component.length > 128 || component.endsWith('.partial') || component.endsWith('.lock')) {
      throw new ModelCacheError('unsafe_path', `refusing digest ${JSON.stringify(ref.digest.slice(0, 120))} as a cache path`);
    }
    const path = resolve(this.root, ref.backend, ...ref.repo.split('/'), component);
    if (!within(this.root, path) || path.length > MAX_CACHE_PATH_LENGTH) throw new ModelCacheError('unsafe_path', `cache path for ${ref.repo}@${ref.digest} leaves the cache root`);
    return path;
  }

  /**
   * Marks a model as in use by this process (e.g. while fingerprinting it) until the returned
   * function is called: `gc` will not evict it. Last use is refreshed by `ensureModel`.
   */
  acquire(ref: Pick<ModelRef, 'backend' | 'repo' | 'digest'>): () => void {
    const key = this.modelPath(ref);
    this.leases.set(key, (this.leases.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.leases.get(key) ?? 1) - 1;
      if (n <= 0) this.leases.delete(key);
      else this.leases.set(key, n);
    };
  }

  /** The marker of a complete cached model, or null. Never touches the network. */
  async readMarker(dir: string): Promise<CacheMarker | null> {
    try {
      const st = await stat(join(dir, MARKER_FILE));
      if (!st.isFile() || st.size > MAX_MARKER_BYTES) return null;
      const raw = JSON.parse(await readFile(join(dir, MARKER_FILE), 'utf8')) as Partial<CacheMarker> | null;
      if (!raw || typeof raw.model_uri !== 'string' || typeof raw.files !== 'object' || raw.files === null || typeof raw.completed_at !== 'string') return null;
      return raw as CacheMarker;
    } catch {
      return null;
    }
  }

  /**
   * Makes `files` (filtered by {@link selectCacheFiles}) of `ref` available locally and returns the
   * complete directory and its marker. Returns at once, with no request, when a matching complete
   * copy exists. Download failures throw {@link DownloadError}; cache failures {@link ModelCacheError}.
   */
  async ensureModel(ref: ModelRef, store: ModelStore, files: readonly StoreFile[], options: EnsureOptions = {}): Promise<EnsuredModel> {
    const path = this.modelPath(ref);
    const wanted = selectCacheFiles(files, options.includeConfigs);
    if (wanted.length > MAX_CACHE_FILES) throw new ModelCacheError('too_many_files', `${ref.uri} has ${wanted.length} files to cache (cap ${MAX_CACHE_FILES})`);
    for (const f of wanted) {
      if (!isSafeRepoPath(f.path) || f.path === MARKER_FILE || join(path, f.path).length > MAX_CACHE_PATH_LENGTH) {
        throw new ModelCacheError('unsafe_path', `refusing file path ${JSON.stringify(f.path.slice(0, 120))}`);
      }
    }
    const release = this.acquire(ref);
    try {
      // One download per model in this process: a second caller waits for the first, then
      // re-checks (a no-op when the first one covered its files).
      for (;;) {
        const running = this.inflight.get(path);
        if (!running) break;
        await running.catch(() => {});
      }
      // Registered before the first await so a concurrent caller always finds it.
      const work = (async () => (await this.completeCopy(path, ref, wanted)) ?? this.populate(path, ref, store, wanted, options))();
      this.inflight.set(path, work);
      try {
        return await work;
      } catch (error) {
        if (error instanceof DownloadError || error instanceof ModelCacheError) throw error;
        throw diskError(error, `caching ${ref.uri}`);
      } finally {
        this.inflight.delete(path);
      }
    } finally {
      release();
    }
  }

  private async completeCopy(path: string, ref: ModelRef, wanted: readonly StoreFile[]): Promise<EnsuredModel | null> {
    const marker = await this.readMarker(path);
    if (!marker || marker.model_uri !== ref.uri) return null;
    for (const f of wanted) {
      const m = marker.files[f.path];
      if (!m || m.size !== f.size || (f.sha256 && m.sha256 !== f.sha256)) return null;
      const st = await stat(join(path, ...f.path.split('/'))).catch(() => null);
      if (!st?.isFile() || st.size !== f.size) return null;
    }
    await this.touch(path);
    return { dir: path, marker };
  }

  private async populate(path: string, ref: ModelRef, store: ModelStore, wanted: readonly StoreFile[], options: EnsureOptions): Promise<EnsuredModel> {
    const signal = options.signal ?? new AbortController().signal;
    const unlock = await this.lock(path, signal);
    try {
      const again = await this.completeCopy(path, ref, wanted);
      if (again) return again;
      const partial = `${path}.partial`;
      try {
        await mkdir(dirname(path), { recursive: true });
        // A complete copy that lacks some wanted files is reopened and extended.
        if (await stat(join(path, MARKER_FILE)).catch(() => null)) {
          // Its marker moves along: harmless inside `.partial` (only the final rename makes a
          // directory complete) and it keeps the earlier files listed in the new marker.
          await rm(partial, { recursive: true, force: true });
          await rename(path, partial);
        }
        await mkdir(partial, { recursive: true });
        await mkdir(this.blobDir, { recursive: true });
      } catch (error) {
        throw diskError(error, `preparing ${partial}`);
      }
      const entries: Record<string, { size: number; sha256: string }> = {};
      for (const f of wanted) {
        if (signal.aborted) throw new DownloadError('aborted', `caching ${ref.uri} aborted`);
        entries[f.path] = { size: f.size, sha256: await this.placeFile(partial, ref, store, f, options, signal) };
      }
      const sorted = Object.fromEntries(Object.keys(entries).sort().map((k) => [k, entries[k] as { size: number; sha256: string }]));
      // Files of an earlier, smaller copy stay listed.
      const previous = await this.readMarker(partial);
      const marker: CacheMarker = { model_uri: ref.uri, files: { ...(previous?.files ?? {}), ...sorted }, completed_at: new Date().toISOString() };
      try {
        const tmp = join(partial, `${MARKER_FILE}.tmp`);
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(`${JSON.stringify(marker)}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, join(partial, MARKER_FILE));
        await rm(path, { recursive: true, force: true });
        await rename(partial, path);
      } catch (error) {
        throw diskError(error, `completing ${path}`);
      }
      return { dir: path, marker };
    } finally {
      await unlock();
    }
  }

  /** Puts one file into `partial` (reusing a blob, a finished file, or downloading); returns its sha256. */
  private async placeFile(partial: string, ref: ModelRef, store: ModelStore, f: StoreFile, options: EnsureOptions, signal: AbortSignal): Promise<string> {
    const target = join(partial, ...f.path.split('/'));
    if (!within(partial, target)) throw new ModelCacheError('unsafe_path', `file path ${f.path} leaves the model directory`);
    await mkdir(dirname(target), { recursive: true }).catch((e) => {
      throw diskError(e, `creating ${dirname(target)}`);
    });
    const expected = f.sha256 && SHA256_HEX.test(f.sha256) ? f.sha256 : undefined;
    // A file finished by an earlier (crashed) run: keep it if it still matches.
    const existing = await lstat(target).catch(() => null);
    if (existing) {
      if (existing.isFile() && existing.size === f.size) {
        const blob = expected ? await stat(join(this.blobDir, expected)).catch(() => null) : null;
        if (blob && blob.ino === existing.ino && blob.dev === existing.dev) return expected as string;
        const sha = await sha256File(target).catch(() => null);
        if (sha && (!expected || sha === expected)) {
          await this.ingest(target, sha);
          return sha;
        }
      }
      await rm(target, { recursive: true, force: true });
    }
    // Content addressing: a body we already hold is linked, not downloaded.
    if (expected) {
      const blob = await stat(join(this.blobDir, expected)).catch(() => null);
      if (blob?.isFile() && blob.size === f.size) {
        const linked = await link(join(this.blobDir, expected), target).then(
          () => true,
          (e: NodeJS.ErrnoException) => {
            // A concurrent gc may have just deleted an unreferenced blob: download it instead.
            if (e.code === 'ENOENT') return false;
            throw diskError(e, `linking ${target}`);
          },
        );
        if (linked) return expected;
      }
    }
    const dl = this.options.download ?? {};
    const result = await downloadFile({
      store,
      ref,
      file: f,
      dest: target,
      signal,
      ...(expected ? { expectedSha256: expected } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}),
      ...(options.stallRetries !== undefined ? { stallRetries: options.stallRetries } : {}),
      ...(dl.partSize !== undefined ? { partSize: dl.partSize } : {}),
      ...(dl.concurrency !== undefined ? { concurrency: dl.concurrency } : {}),
      ...(dl.partRetries !== undefined ? { partRetries: dl.partRetries } : {}),
      ...(dl.backoffBaseMs !== undefined ? { backoffBaseMs: dl.backoffBaseMs } : {}),
      ...(dl.backoffMaxMs !== undefined ? { backoffMaxMs: dl.backoffMaxMs } : {}),
      ...(dl.progressIntervalMs !== undefined ? { progressIntervalMs: dl.progressIntervalMs } : {}),
    });
    await this.ingest(target, result.sha256);
    return result.sha256;
  }

  /** Makes `target` and `blobs/sha256/<sha>` the same inode (the blob wins if it already exists). */
  private async ingest(target: string, sha: string): Promise<void> {
    const blob = join(this.blobDir, sha);
    try {
      await link(target, blob);
      await chmod(blob, 0o444);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(e, `storing blob ${sha}`);
    }
    const [a, b] = await Promise.all([stat(target), stat(blob)]);
    if (a.ino === b.ino && a.dev === b.dev) return;
    // Replace our copy with a link to the existing blob, atomically.
    const tmp = `${target}.${randomBytes(4).toString('hex')}.lnk`;
    try {
      await link(blob, tmp);
      await rename(tmp, target);
    } catch (error) {
      await rm(tmp, { force: true });
      throw diskError(error, `linking blob ${sha}`);
    }
  }

  private async touch(path: string): Promise<void> {
    const now = new Date();
    await utimes(join(path, MARKER_FILE), now, now).catch(() => {});
  }

  /** Takes `<path>.lock` (O_EXCL, with our pid), waiting while a live process holds it. */
  private async lock(path: string, signal: AbortSignal): Promise<() => Promise<void>> {
    const lockPath = `${path}.lock`;
    await mkdir(dirname(lockPath), { recursive: true }).catch((e) => {
      throw diskError(e, `creating ${dirname(lockPath)}`);
    });
    const token = randomBytes(8).toString('hex');
    for (;;) {
      if (signal.aborted) throw new DownloadError('aborted', `waiting for ${lockPath} aborted`);
      try {
        const fh = await open(lockPath, 'wx');
        try {
          await fh.writeFile(JSON.stringify({ pid: process.pid, token, started_at: new Date().toISOString() }));
        } finally {
          await fh.close();
        }
        HELD_LOCKS.add(lockPath);
        return async () => {
          HELD_LOCKS.delete(lockPath);
          // Only remove our own lock (a stale-lock takeover by another process must survive).
          const owner = await readFile(lockPath, 'utf8').catch(() => '');
          if (owner.includes(token)) await rm(lockPath, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(e, `creating ${lockPath}`);
      }
      if (await this.isStaleLock(lockPath)) {
        await rm(lockPath, { force: true });
        continue;
      }
      await abortableSleep(this.lockPollMs, signal);
    }
  }

  private async isStaleLock(lockPath: string): Promise<boolean> {
    try {
      const st = await stat(lockPath);
      const text = await readFile(lockPath, 'utf8');
      let pid: unknown;
      try {
        pid = (JSON.parse(text) as { pid?: unknown }).pid;
      } catch {
        // Being written right now, or garbage: garbage older than 10 s is stale.
        return Date.now() - st.mtimeMs > 10_000;
      }
      if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return true;
      // Our own pid can only be a leftover of an earlier process that had it: this process
      // never waits on its own lock (in-process callers share one download).
      if (pid === process.pid) return !HELD_LOCKS.has(lockPath);
      return !isPidAlive(pid);
    } catch {
      return false; // vanished: retry creating it
    }
  }

  /** Complete models under the root: path, marker and last use. */
  async listModels(): Promise<Array<{ dir: string; marker: CacheMarker; lastUsedMs: number }>> {
    return (await this.scan()).models;
  }

  private async scan(): Promise<{ models: Array<{ dir: string; marker: CacheMarker; lastUsedMs: number }>; partials: string[] }> {
    const out: Array<{ dir: string; marker: CacheMarker; lastUsedMs: number }> = [];
    const partials: string[] = [];
    let seen = 0;
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 20) return;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      if (entries.some((e) => e.isFile() && e.name === MARKER_FILE)) {
        const marker = await this.readMarker(dir);
        const st = await stat(join(dir, MARKER_FILE)).catch(() => null);
        if (marker && st) out.push({ dir, marker, lastUsedMs: st.mtimeMs });
        return;
      }
      for (const e of entries) {
        if (++seen > MAX_GC_ENTRIES) return;
        if (!e.isDirectory()) continue;
        if (e.name.endsWith('.partial')) partials.push(join(dir, e.name));
        else await walk(join(dir, e.name), depth + 1);
      }
    };
    for (const backend of ['hippius', 'hf']) await walk(join(this.root, backend), 0);
    return { models: out, partials };
  }

  /** Sum of blob sizes (each body once). */
  async blobBytes(): Promise<number> {
    const names = await readdir(this.blobDir).catch(() => [] as string[]);
    let total = 0;
    for (const n of names) total += (await stat(join(this.blobDir, n)).catch(() => null))?.size ?? 0;
    return total;
  }

  /**
   * Evicts unprotected, unused models older than the TTL, then least-recently-used ones until the
   * blob bytes fit `maxBytes` (the constructor's, unless overridden here), and deletes blobs no
   * model links to. `protected` holds model uris; `now` is for tests.
   */
  async gc(options: { protected: ReadonlySet<string>; now?: number; maxBytes?: number }): Promise<GcResult> {
    const now = options.now ?? Date.now();
    const maxBytes = options.maxBytes ?? this.maxBytes;
    const evicted: string[] = [];
    const candidates: Array<{ dir: string; marker: CacheMarker; lastUsedMs: number }> = [];
    const { models, partials } = await this.scan();
    // Abandoned downloads (no live lock, untouched for longer than the TTL) hold blob links too.
    for (const p of partials) {
      const dir = p.slice(0, -'.partial'.length);
      if (this.inflight.has(dir) || (await this.lockedElsewhere(dir))) continue;
      const st = await stat(p).catch(() => null);
      if (st && now - st.mtimeMs > this.ttlMs) await rm(p, { recursive: true, force: true });
    }
    for (const m of models) {
      if (options.protected.has(m.marker.model_uri)) continue;
      if (this.leases.has(m.dir) || this.inflight.has(m.dir)) continue;
      if (await this.lockedElsewhere(m.dir)) continue;
      candidates.push(m);
    }
    candidates.sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    const evict = async (m: (typeof candidates)[number]) => {
      // Rename first so no reader ever sees a half-deleted model.
      const trash = join(this.root, '.trash', randomBytes(8).toString('hex'));
      await mkdir(dirname(trash), { recursive: true });
      await rename(m.dir, trash);
      await rm(trash, { recursive: true, force: true });
      evicted.push(m.marker.model_uri);
    };
    const rest: typeof candidates = [];
    for (const m of candidates) {
      if (now - m.lastUsedMs > this.ttlMs) await evict(m);
      else rest.push(m);
    }
    let blobsDeleted = await this.deleteUnreferencedBlobs();
    let bytes = await this.blobBytes();
    while (bytes > maxBytes) {
      const m = rest.shift();
      if (!m) break;
      await evict(m);
      blobsDeleted += await this.deleteUnreferencedBlobs();
      bytes = await this.blobBytes();
    }
    return { evicted, blobsDeleted, bytesAfter: bytes };
  }

  private async lockedElsewhere(dir: string): Promise<boolean> {
    const lockPath = `${dir}.lock`;
    if (!(await stat(lockPath).catch(() => null))) return false;
    return !(await this.isStaleLock(lockPath));
  }

  /** Blobs with link count 1 are in no model directory (complete or partial). */
  private async deleteUnreferencedBlobs(): Promise<number> {
    const names = await readdir(this.blobDir).catch(() => [] as string[]);
    let n = 0;
    for (const name of names) {
      const st = await stat(join(this.blobDir, name)).catch(() => null);
      if (st?.isFile() && st.nlink <= 1) {
        await rm(join(this.blobDir, name), { force: true });
        n++;
      }
    }
    return n;
  }
}

/** `ALBEDO_MODEL_CACHE_DIR` / `ALBEDO_MODEL_TTL_MIN` from the environment. */
export function modelCacheFromEnv(env: NodeJS.ProcessEnv = process.env, extra: Omit<ModelCacheOptions, 'root' | 'ttlMs'> = {}): ModelCache {
  const root = env.ALBEDO_MODEL_CACHE_DIR?.trim();
  const ttlMin = Number(env.ALBEDO_MODEL_TTL_MIN ?? '');
  return new ModelCache({
    ...extra,
    ...(root ? { root: root.startsWith('~/') ? join(homedir(), root.slice(2)) : root } : {}),
    ...(Number.isFinite(ttlMin) && ttlMin > 0 && env.ALBEDO_MODEL_TTL_MIN?.trim() ? { ttlMs: ttlMin * 60_000 } : {}),
  });
}
