import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelay, DownloadError, stallSettingsFromEnv, type DownloadOptions, type DownloadProgress, downloadFile } from './download.ts';
import { HippiusStore } from './hippius-store.ts';
import { type LocalHub, startLocalHub } from './local-hub.ts';
import { type LocalRegistry, type PublishedRegistryModel, publishRegistryModel, startLocalRegistry } from './local-registry.ts';
import { HfHubStore, type StoreFile } from './model-store.ts';
import { publishSyntheticModel } from './synthetic-model.ts';

const PART = 64 * 1024;
const BIG = 'weights.safetensors';

async function downloadError(p: Promise<unknown>): Promise<DownloadError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DownloadError) return e;
    throw e;
  }
  throw new Error('expected a DownloadError');
}

describe('downloadFile over the local registry', () => {
  let src: string;
  let root: string;
  let out: string;
  let registry: LocalRegistry;
  let plain: PublishedRegistryModel;
  let chunked: PublishedRegistryModel;
  let bytes: Buffer;
  let sha: string;
  beforeAll(async () => {
    src = await mkdtemp(join(tmpdir(), 'albedo-dl-src-'));
    root = await mkdtemp(join(tmpdir(), 'albedo-dl-reg-'));
    out = await mkdtemp(join(tmpdir(), 'albedo-dl-out-'));
    bytes = randomBytes(16 * PART + 1234); // 17 parts, the last one short
    sha = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(src, BIG), bytes);
    await writeFile(join(src, 'empty.json'), '');
    plain = await publishRegistryModel(root, 'alice/albedo-qwen3.6-35b-dl', src);
    chunked = await publishRegistryModel(root, 'alice/albedo-qwen3.6-35b-dlc', src, { chunked: (p) => p === BIG, chunkSize: 40_000, chunksPerPack: 4 });
    registry = await startLocalRegistry({ root });
  });
  afterAll(async () => {
    await registry.close();
    for (const d of [src, root, out]) await rm(d, { recursive: true, force: true });
  });

  const store = () => new HippiusStore({ registry: registry.url, timeoutMs: 10_000 });
  const fileOf = (m: PublishedRegistryModel, path = BIG): StoreFile => {
    const f = m.files.find((x) => x.path === path);
    if (!f) throw new Error(`no ${path}`);
    return f;
  };
  const blobRanges = (since: number) =>
    registry.requests
      .slice(since)
      .filter((r) => r.kind === 'blob' && r.range)
      .map((r) => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1]));
  const opts = (m: PublishedRegistryModel, dest: string, over: Partial<DownloadOptions> = {}): DownloadOptions => ({
    store: store(),
    ref: m.ref,
    file: fileOf(m),
    dest,
    partSize: PART,
    concurrency: 4,
    backoffBaseMs: 1,
    backoffMaxMs: 5,
    ...over,
  });

  it('downloads with parallel parts into a byte-identical file (plain and chunked layers)', async () => {
    for (const m of [plain, chunked]) {
      const dest = join(out, `par-${m.ref.repo.split('/')[1]}`);
      const r = await downloadFile(opts(m, dest));
      expect(r).toMatchObject({ size: bytes.byteLength, sha256: sha, resumedParts: 0, fetchedParts: 17 });
      expect((await readFile(dest)).equals(bytes)).toBe(true);
      await expect(stat(`${dest}.download`)).rejects.toThrow();
      await expect(stat(`${dest}.download.journal`)).rejects.toThrow();
    }
    const empty = await downloadFile(opts(plain, join(out, 'empty'), { file: fileOf(plain, 'empty.json') }));
    expect(empty.sha256).toBe(createHash('sha256').digest('hex'));
  });

  it('resumes after an abort, re-fetching only the missing parts and re-verifying resumed ones', async () => {
    const dest = join(out, 'resume');
    const ac = new AbortController();
    registry.setInterceptor((r) => {
      if (r.kind === 'blob' && r.range?.startsWith(`bytes=${6 * PART}-`)) {
        // Parts 0..5 are journaled before a worker asks for part 6 (concurrency 1).
        queueMicrotask(() => ac.abort(new Error('operator stop')));
        return 'hang';
      }
      return undefined;
    });
    try {
      const e = await downloadError(downloadFile(opts(plain, dest, { concurrency: 1, signal: ac.signal })));
      expect(e.code).toBe('aborted');
    } finally {
      registry.setInterceptor(undefined);
    }
    expect((await stat(`${dest}.download`)).size).toBe(bytes.byteLength);
    // Corrupt journaled part 2 on disk: the resume must notice and fetch it again.
    const fh = await open(`${dest}.download`, 'r+');
    await fh.write(Buffer.from('garbage!'), 0, 8, 2 * PART + 10);
    await fh.close();
    const since = registry.requests.length;
    const r = await downloadFile(opts(plain, dest));
    expect(r).toMatchObject({ resumedParts: 5, fetchedParts: 12, sha256: sha });
    expect(blobRanges(since).sort((a, b) => a - b)).toEqual([2, ...Array.from({ length: 11 }, (_, i) => 6 + i)].map((p) => p * PART));
    expect((await readFile(dest)).equals(bytes)).toBe(true);
  });

  it('retries a reset mid-body and a 5xx on one Range request (transient, not a miner fault)', async () => {
    const dest = join(out, 'transient');
    const fired = new Set<string>();
    registry.setInterceptor((r) => {
      if (r.kind !== 'blob' || !r.range) return undefined;
      for (const [start, fault] of [
        [3 * PART, 'reset'],
        [5 * PART, 503],
      ] as const) {
        if (r.range.startsWith(`bytes=${start}-`) && !fired.has(r.range)) {
          fired.add(r.range);
          return fault;
        }
      }
      return undefined;
    });
    try {
      const r = await downloadFile(opts(plain, dest));
      expect(r.sha256).toBe(sha);
    } finally {
      registry.setInterceptor(undefined);
    }
    expect(fired.size).toBe(2);
    expect((await readFile(dest)).equals(bytes)).toBe(true);
    expect(registry.requests.some((r) => r.status === 503)).toBe(true);
  });

  it('trips the stall watchdog on a hung server and gives up after N fruitless attempts', async () => {
    const dest = join(out, 'stall');
    registry.setInterceptor((r) => (r.kind === 'blob' ? 'hang' : undefined));
    const since = registry.requests.length;
    try {
      const s = store();
      await s.listFiles(plain.ref, new AbortController().signal); // manifest outside the hang
      const e = await downloadError(downloadFile(opts(plain, dest, { store: s, concurrency: 1, stallMs: 300, stallRetries: 2 })));
      expect(e.code).toBe('stalled');
      expect(e.faultCode()).toBe('download_failed');
    } finally {
      registry.setInterceptor(undefined);
    }
    expect(blobRanges(since)).toEqual([0, 0]); // one hung request per attempt, two attempts
  });

  it('resets the fruitless count after an attempt that made progress', async () => {
    const dest = join(out, 'stall-progress');
    const hungOnce = new Set<string>();
    // Every part hangs on its first request: each attempt completes one part, then stalls.
    registry.setInterceptor((r) => {
      if (r.kind !== 'blob' || !r.range || hungOnce.has(r.range)) return undefined;
      hungOnce.add(r.range);
      return 'hang';
    });
    const small = { ...fileOf(plain), size: 4 * PART, sha256: createHash('sha256').update(bytes.subarray(0, 4 * PART)).digest('hex') };
    try {
      const r = await downloadFile(opts(plain, dest, { file: small, concurrency: 1, stallMs: 300, stallRetries: 2 }));
      expect(r.sha256).toBe(small.sha256);
    } finally {
      registry.setInterceptor(undefined);
    }
    expect(hungOnce.size).toBe(4);
  });

  it('fails integrity on a digest mismatch and deletes the data', async () => {
    const dest = join(out, 'integrity');
    const e = await downloadError(downloadFile(opts(plain, dest, { expectedSha256: 'f'.repeat(64) })));
    expect(e.code).toBe('integrity');
    expect(e.message).toMatch(/expected sha256:f{64}/);
    await expect(stat(`${dest}.download`)).rejects.toThrow();
    await expect(stat(`${dest}.download.journal`)).rejects.toThrow();
    await expect(stat(dest)).rejects.toThrow();
  });

  it('does not retry not_found', async () => {
    const since = registry.requests.length;
    const e = await downloadError(downloadFile(opts(plain, join(out, 'nf'), { file: { path: 'ghost.safetensors', size: 10 } })));
    expect(e.code).toBe('not_found');
    expect(registry.requests.slice(since).filter((r) => r.kind === 'blob')).toEqual([]);
  });

  it('reports monotone progress with the total', async () => {
    const seen: DownloadProgress[] = [];
    await downloadFile(opts(chunked, join(out, 'progress'), { progressIntervalMs: 0, onProgress: (p) => seen.push(p) }));
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect((seen[i] as DownloadProgress).bytesDone).toBeGreaterThanOrEqual((seen[i - 1] as DownloadProgress).bytesDone);
    expect(seen.every((p) => p.bytesTotal === bytes.byteLength && p.file === BIG)).toBe(true);
    expect(seen.at(-1)?.bytesDone).toBe(bytes.byteLength);
    expect(seen[0]?.bytesDone).toBe(0);
  });

  it('maps a local file system error to disk', async () => {
    const blocker = join(out, 'not-a-dir');
    await writeFile(blocker, 'x');
    const e = await downloadError(downloadFile(opts(plain, join(blocker, 'f'))));
    expect(e.code).toBe('disk');
  });
});

describe('downloadFile over the local HF hub', () => {
  let root: string;
  let hub: LocalHub;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'albedo-dl-hf-'));
    hub = await startLocalHub({ root, redirectResolve: true });
  });
  afterAll(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });

  it('verifies against the LFS sha256 of the listing', async () => {
    const model = await publishSyntheticModel(root, 'bob/albedo-qwen3.6-35b-dl', { backend: 'hf' });
    const store = new HfHubStore({ endpoint: hub.url, timeoutMs: 5_000 });
    const files = await store.listFiles(model.ref, new AbortController().signal);
    const shard = files.find((f) => f.path === 'model-00001-of-00002.safetensors');
    expect(shard?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(files.find((f) => f.path === 'config.json')?.sha256).toBeUndefined();
    const dest = join(root, 'out', 'shard');
    await mkdir(join(root, 'out'), { recursive: true });
    const r = await downloadFile({ store, ref: model.ref, file: shard as StoreFile, dest, partSize: 100, concurrency: 3 });
    expect(r.sha256).toBe(shard?.sha256);
    expect((await readFile(dest)).equals(await readFile(join(model.dir, 'model-00001-of-00002.safetensors')))).toBe(true);
  });

  it('reads a trickled (slow) body and counts requests per path', async () => {
    const model = await publishSyntheticModel(root, 'bob/albedo-qwen3.6-35b-slow', { backend: 'hf', seed: 'slow' });
    const store = new HfHubStore({ endpoint: hub.url, timeoutMs: 5_000 });
    const shard = (await store.listFiles(model.ref, new AbortController().signal)).find((f) => f.path === 'model-00002-of-00002.safetensors') as StoreFile;
    hub.setInterceptor((r) => (r.kind === 'resolve' ? 'slow' : undefined));
    hub.counter.reset();
    const seen: number[] = [];
    try {
      const r = await downloadFile({ store, ref: model.ref, file: shard, dest: join(root, 'out', 'slow'), partSize: 512, concurrency: 2, progressIntervalMs: 0, onProgress: (p) => seen.push(p.bytesDone) });
      expect(r.sha256).toBe(shard.sha256);
    } finally {
      hub.setInterceptor(undefined);
    }
    // At least one progress step per part plus the first and last; one request per part (plus the redirect hop).
    expect(seen.length).toBeGreaterThanOrEqual(Math.ceil(shard.size / 512) + 2);
    expect(seen.at(-1)).toBe(shard.size);
    expect(hub.counter.countMatching('/resolve/')).toBe(2 * Math.ceil(shard.size / 512));
  });
});

describe('backoffDelay', () => {
  it('is bounded by the exponential ceiling and the maximum', () => {
    expect(backoffDelay(0, 500, 30_000, () => 0.999)).toBeLessThan(500);
    expect(backoffDelay(3, 500, 30_000, () => 0.999)).toBeLessThan(4000);
    expect(backoffDelay(40, 500, 30_000, () => 0.999)).toBeLessThan(30_000);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
  });
});

describe('stallSettingsFromEnv', () => {
  it('uses the per-backend defaults and overrides', () => {
    expect(stallSettingsFromEnv('hf', {})).toEqual({ stallMs: 180_000, stallRetries: 3 });
    expect(stallSettingsFromEnv('hippius', {})).toEqual({ stallMs: 1_200_000, stallRetries: 2 });
    expect(stallSettingsFromEnv('hf', { ALBEDO_DOWNLOAD_STALL_SECONDS: '30', ALBEDO_DOWNLOAD_STALL_RETRIES: '5' })).toEqual({ stallMs: 30_000, stallRetries: 5 });
    expect(() => stallSettingsFromEnv('hippius', { ALBEDO_HIPPIUS_DOWNLOAD_STALL_SECONDS: 'x' })).toThrow(/ALBEDO_HIPPIUS_DOWNLOAD_STALL_SECONDS must be a positive integer, got "x"/);
    expect(() => stallSettingsFromEnv('hf', { ALBEDO_DOWNLOAD_STALL_RETRIES: '-1' })).toThrow(/ALBEDO_DOWNLOAD_STALL_RETRIES must be a positive integer/);
  });
});
