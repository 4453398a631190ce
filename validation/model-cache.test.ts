import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError } from './download.ts';
import { HippiusStore } from './hippius-store.ts';
import { type LocalRegistry, type PublishedRegistryModel, publishRegistryModel, startLocalRegistry } from './local-registry.ts';
import { MARKER_FILE, ModelCache, ModelCacheError, modelCacheFromEnv, selectCacheFiles } from './model-cache.ts';
import type { ModelRef } from './model-ref.ts';
import type { StoreFile } from './model-store.ts';
import { createSyntheticModel } from './synthetic-model.ts';

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const CACHED = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json'];

describe('ModelCache over the local registry', () => {
  let src: string;
  let regRoot: string;
  let registry: LocalRegistry;
  const models: PublishedRegistryModel[] = [];
  let sharedA: PublishedRegistryModel;
  let sharedB: PublishedRegistryModel;
  const signal = () => new AbortController().signal;

  beforeAll(async () => {
    src = await mkdtemp(join(tmpdir(), 'albedo-cache-src-'));
    regRoot = await mkdtemp(join(tmpdir(), 'albedo-cache-reg-'));
    for (let i = 0; i < 5; i++) {
      const m = await createSyntheticModel(join(src, `m${i}`), { seed: `seed-${i}` });
      models.push(await publishRegistryModel(regRoot, `alice/albedo-qwen3.6-35b-m${i}`, m.dir, { chunked: (p) => p === SHARD2, chunkSize: 150 }));
    }
    // Two models sharing shard 1 byte for byte; shard 2 differs.
    const a = await createSyntheticModel(join(src, 'sa'), { seed: 'shared' });
    const b = await createSyntheticModel(join(src, 'sb'), { seed: 'shared', extraFiles: { [SHARD2]: randomBytes(999) } });
    sharedA = await publishRegistryModel(regRoot, 'bob/albedo-qwen3.6-35b-a', a.dir);
    sharedB = await publishRegistryModel(regRoot, 'bob/albedo-qwen3.6-35b-b', b.dir);
    registry = await startLocalRegistry({ root: regRoot });
  });
  afterAll(async () => {
    await registry.close();
    await rm(src, { recursive: true, force: true });
    await rm(regRoot, { recursive: true, force: true });
  });

  const store = () => new HippiusStore({ registry: registry.url, timeoutMs: 10_000 });
  const newCache = async (over: ConstructorParameters<typeof ModelCache>[0] = {}) =>
    new ModelCache({ root: await mkdtemp(join(tmpdir(), 'albedo-cache-')), download: { partSize: 256, concurrency: 3, backoffBaseMs: 1, backoffMaxMs: 5 }, ...over });
  const listed = async (m: PublishedRegistryModel): Promise<StoreFile[]> => store().listFiles(m.ref, signal());

  it('downloads the spec files into the layout with a marker; a second ensure makes no request', async () => {
    const cache = await newCache();
    const m = models[0] as PublishedRegistryModel;
    const files = await listed(m);
    const { dir, marker } = await cache.ensureModel(m.ref, store(), files);
    expect(dir).toBe(join(cache.root, 'hippius', 'alice', 'albedo-qwen3.6-35b-m0', m.ref.digest.replace(':', '_')));
    expect((await readdir(dir)).sort()).toEqual([MARKER_FILE, ...CACHED].sort());
    expect(marker.model_uri).toBe(m.uri);
    expect(Object.keys(marker.files)).toEqual(CACHED);
    for (const name of CACHED) {
      const f = m.files.find((x) => x.path === name);
      expect(marker.files[name]).toEqual({ size: f?.size, sha256: f?.sha256 });
      expect((await readFile(join(dir, name))).equals(await readFile(join(src, 'm0', name)))).toBe(true);
    }
    expect(new Date(marker.completed_at).toISOString()).toBe(marker.completed_at);
    expect(JSON.parse(await readFile(join(dir, MARKER_FILE), 'utf8'))).toEqual(marker);
    await expect(stat(`${dir}.partial`)).rejects.toThrow();
    await expect(stat(`${dir}.lock`)).rejects.toThrow();

    registry.counter.reset();
    const again = await cache.ensureModel(m.ref, store(), files);
    expect(again).toEqual({ dir, marker });
    expect(registry.counter.countMatching('/')).toBe(0);

    // Asking for the small configs too extends the same directory.
    const withConfigs = await cache.ensureModel(m.ref, store(), files, { includeConfigs: true });
    expect(Object.keys(withConfigs.marker.files)).toContain('config.json');
    expect(Object.keys(withConfigs.marker.files)).toContain(SHARD1);
    expect(selectCacheFiles(files).map((f) => f.path).sort()).toEqual(CACHED);
  });

  it('never shows a .partial as complete after a crash, and resumes', async () => {
    const cache = await newCache();
    const m = models[1] as PublishedRegistryModel;
    const files = await listed(m);
    const ac = new AbortController();
    const shard2Pack = new Set<string>();
    registry.setInterceptor((r) => {
      // Shard 2 is chunked: hang on its pack blobs and "crash" (abort) there.
      if (r.kind === 'blob' && r.range && r.reference && !m.files.some((f) => `sha256:${f.sha256}` === r.reference)) {
        shard2Pack.add(r.reference);
        queueMicrotask(() => ac.abort(new Error('crash')));
        return 'hang';
      }
      return undefined;
    });
    let error: unknown;
    try {
      await cache.ensureModel(m.ref, store(), files, { signal: ac.signal });
    } catch (e) {
      error = e;
    } finally {
      registry.setInterceptor(undefined);
    }
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).code).toBe('aborted');
    expect(shard2Pack.size).toBeGreaterThan(0);
    const path = cache.modelPath(m.ref);
    await expect(stat(path)).rejects.toThrow();
    expect(await cache.readMarker(`${path}.partial`)).toBeNull();
    expect(await cache.readMarker(path)).toBeNull();
    await expect(stat(`${path}.lock`)).rejects.toThrow();
    expect((await cache.listModels()).length).toBe(0);

    // Shard 1 finished before the crash: the resumed run does not fetch it again.
    const shard1Digest = `sha256:${m.files.find((f) => f.path === SHARD1)?.sha256}`;
    const since = registry.requests.length;
    const { marker } = await cache.ensureModel(m.ref, store(), files);
    expect(Object.keys(marker.files)).toEqual(CACHED);
    expect(registry.requests.slice(since).filter((r) => r.reference === shard1Digest)).toEqual([]);
  });

  it('shares one download between concurrent ensures and takes over a stale lock', async () => {
    const cache = await newCache();
    const m = models[2] as PublishedRegistryModel;
    const files = await listed(m);
    const path = cache.modelPath(m.ref);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(`${path}.lock`, JSON.stringify({ pid: 2_147_483_646, started_at: 'long ago' }));
    const since = registry.requests.length;
    const [a, b] = await Promise.all([cache.ensureModel(m.ref, store(), files), cache.ensureModel(m.ref, store(), files)]);
    expect(a).toEqual(b);
    const shard1Digest = `sha256:${m.files.find((f) => f.path === SHARD1)?.sha256}`;
    const size = m.files.find((f) => f.path === SHARD1)?.size ?? 0;
    expect(registry.requests.slice(since).filter((r) => r.reference === shard1Digest).length).toBe(Math.ceil(size / 256));
  });

  it('shares downloads across two cache instances of one process; a leftover lock with our own pid is stale', async () => {
    const first = await newCache();
    const second = new ModelCache({ root: first.root, download: { partSize: 256 } });
    const m = models[3] as PublishedRegistryModel;
    const files = await listed(m);
    const path = first.modelPath(m.ref);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(`${path}.lock`, JSON.stringify({ pid: process.pid, started_at: 'a previous life' }));
    const shard1Digest = `sha256:${m.files.find((f) => f.path === SHARD1)?.sha256}`;
    const since = registry.requests.length;
    const [a, b] = await Promise.all([first.ensureModel(m.ref, store(), files), second.ensureModel(m.ref, store(), files)]);
    expect(a.dir).toBe(b.dir);
    const size = m.files.find((f) => f.path === SHARD1)?.size ?? 0;
    expect(registry.requests.slice(since).filter((r) => r.reference === shard1Digest).length).toBe(Math.ceil(size / 256));
  });

  it('gc removes an abandoned .partial (no live lock, older than the TTL) and its blobs', async () => {
    const cache = await newCache({ ttlMs: 60_000 });
    const m = models[4] as PublishedRegistryModel;
    const ac = new AbortController();
    registry.setInterceptor((r) => {
      if (r.kind === 'blob' && r.range && r.reference && !m.files.some((f) => `sha256:${f.sha256}` === r.reference)) {
        queueMicrotask(() => ac.abort(new Error('crash')));
        return 'hang';
      }
      return undefined;
    });
    try {
      await expect(cache.ensureModel(m.ref, store(), await listed(m), { signal: ac.signal })).rejects.toBeInstanceOf(DownloadError);
    } finally {
      registry.setInterceptor(undefined);
    }
    const partial = `${cache.modelPath(m.ref)}.partial`;
    expect((await stat(partial)).isDirectory()).toBe(true);
    expect((await readdir(cache.blobDir)).length).toBe(1); // shard 1 finished before the crash
    await cache.gc({ protected: new Set(), now: Date.now() }); // young: kept
    expect((await stat(partial)).isDirectory()).toBe(true);
    const result = await cache.gc({ protected: new Set(), now: Date.now() + 120_000 });
    await expect(stat(partial)).rejects.toThrow();
    expect(result.blobsDeleted).toBe(1);
    expect(await readdir(cache.blobDir)).toEqual([]);
  });

  it('stores a shared shard once (same inode) and does not download it twice', async () => {
    const cache = await newCache();
    const a = await cache.ensureModel(sharedA.ref, store(), await listed(sharedA));
    const shard1Digest = `sha256:${sharedA.files.find((f) => f.path === SHARD1)?.sha256}`;
    const since = registry.requests.length;
    const b = await cache.ensureModel(sharedB.ref, store(), await listed(sharedB));
    expect(registry.requests.slice(since).filter((r) => r.reference === shard1Digest)).toEqual([]);
    const [sa, sb] = await Promise.all([stat(join(a.dir, SHARD1)), stat(join(b.dir, SHARD1))]);
    expect(sa.ino).toBe(sb.ino);
    expect(sa.nlink).toBe(3); // blob + two models
    expect((await stat(join(a.dir, SHARD2))).ino).not.toBe((await stat(join(b.dir, SHARD2))).ino);
    // shard1, shard2(A), shard2(B), index (same text in both)
    expect((await readdir(cache.blobDir)).length).toBe(4);
  });

  it('gc keeps protected, leased and locked models; evicts by TTL then LRU to the cap; deletes unreferenced blobs', async () => {
    const ttlMs = 4 * 3600_000;
    const cache = await newCache({ ttlMs });
    const now = Date.now();
    const ages = [10, 10, 5, 2, 1, 0.5]; // hours since last use, per model
    const all = [...models, sharedA];
    const dirs: string[] = [];
    for (const m of all) dirs.push((await cache.ensureModel(m.ref, store(), await listed(m))).dir);
    // sharedA (the 6th) is "in flight" in another live process: its lock is held by our parent.
    await writeFile(`${dirs[5]}.lock`, JSON.stringify({ pid: process.ppid, started_at: new Date().toISOString() }));
    for (const [i, d] of dirs.entries()) {
      const t = new Date(now - (ages[i] as number) * 3600_000);
      await utimes(join(d, MARKER_FILE), t, t);
    }
    const shardBytes = (m: PublishedRegistryModel) => m.files.filter((f) => f.path.endsWith('.safetensors')).reduce((a, f) => a + f.size, 0);
    const total = await cache.blobBytes();
    const release = cache.acquire((models[1] as PublishedRegistryModel).ref);
    const cap = total - shardBytes(models[2] as PublishedRegistryModel) - shardBytes(models[3] as PublishedRegistryModel);
    const result = await cache.gc({ protected: new Set([(models[0] as PublishedRegistryModel).uri]), now, maxBytes: cap });
    release();
    expect(result.evicted).toEqual([(models[2] as PublishedRegistryModel).uri, (models[3] as PublishedRegistryModel).uri]);
    expect(result.bytesAfter).toBeLessThanOrEqual(cap);
    for (const i of [0, 1, 4, 5]) expect((await stat(join(dirs[i] as string, MARKER_FILE))).isFile()).toBe(true);
    for (const i of [2, 3]) await expect(stat(dirs[i] as string)).rejects.toThrow();
    for (const f of (models[2] as PublishedRegistryModel).files.filter((x) => x.path.endsWith('.safetensors'))) {
      await expect(stat(join(cache.blobDir, f.sha256))).rejects.toThrow();
    }
    expect(result.blobsDeleted).toBe(4);
  });

  it('refuses paths that would leave the cache root', async () => {
    const cache = await newCache();
    const base = models[0] as PublishedRegistryModel;
    const bad: Array<Pick<ModelRef, 'backend' | 'repo' | 'digest'>> = [
      { backend: 'hippius', repo: '../../etc', digest: base.ref.digest },
      { backend: 'hippius', repo: 'a/b', digest: '../../x' },
      { backend: 'hippius', repo: 'a/b', digest: 'x/../../y' },
      { backend: 'hippius', repo: `a/sha256_${'0'.repeat(64)}`, digest: base.ref.digest },
      { backend: 'hippius', repo: 'a/b.partial', digest: base.ref.digest },
      { backend: '../x' as 'hf', repo: 'a/b', digest: 'e'.repeat(40) },
    ];
    for (const ref of bad) expect(() => cache.modelPath(ref), JSON.stringify(ref)).toThrow(ModelCacheError);
    for (const path of ['../evil.safetensors', '/abs.safetensors', 'a/../../b.safetensors']) {
      await expect(cache.ensureModel(base.ref, store(), [{ path, size: 1 }])).rejects.toMatchObject({ code: 'unsafe_path' });
    }
  });
});

describe('modelCacheFromEnv', () => {
  it('reads ALBEDO_MODEL_CACHE_DIR (with ~) and ALBEDO_MODEL_TTL_MIN', async () => {
    const c = modelCacheFromEnv({ ALBEDO_MODEL_CACHE_DIR: '~/x-albedo-cache', ALBEDO_MODEL_TTL_MIN: '10' });
    expect(c.root.endsWith(join('x-albedo-cache'))).toBe(true);
    expect(c.root.startsWith('/')).toBe(true);
    expect(modelCacheFromEnv({}).root.endsWith(join('.cache', 'albedo_models'))).toBe(true);
  });
});
