import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalHub, startLocalHub } from './local-hub.ts';
import {
  checkRepoName,
  compileRepoNamePattern,
  DEFAULT_REPO_NAME_PATTERN,
  manifestUri,
  type ModelRef,
  parseModelRef,
  storageBackendOfUri,
} from './model-ref.ts';
import { HfHubStore, LocalDirStore, localModelDir, ModelStoreError } from './model-store.ts';
import { storeError } from '../tests/support/errors.ts';
import { type PublishedSyntheticModel, publishSyntheticModel } from './synthetic-model.ts';

const signal = () => new AbortController().signal;


describe('model refs', () => {
  it('parses both digest forms and derives the backend and manifest uri', () => {
    const hex = 'cd'.repeat(32);
    const hip = parseModelRef(`alice/albedo-qwen3.6-35b-x@sha256:${hex}`);
    expect(hip).toMatchObject({ ok: true, ref: { repo: 'alice/albedo-qwen3.6-35b-x', digest: `sha256:${hex}`, backend: 'hippius', mutable: false } });
    const hf = parseModelRef(`alice/albedo-qwen3.6-35b-x@${'e'.repeat(40)}`);
    expect(hf).toMatchObject({ ok: true, ref: { backend: 'hf' } });
    if (!hip.ok || !hf.ok) throw new Error('unreachable');
    expect(manifestUri(hip.ref)).toBe(`registry.hippius.com/alice/albedo-qwen3.6-35b-x@sha256:${hex}`);
    expect(manifestUri(hf.ref)).toBe(`hf://alice/albedo-qwen3.6-35b-x@${'e'.repeat(40)}`);
    expect(storageBackendOfUri(manifestUri(hip.ref))).toBe('hippius');
    expect(storageBackendOfUri(manifestUri(hf.ref))).toBe('hf');
    expect(storageBackendOfUri('s3://b/k')).toBe('s3');
    expect(storageBackendOfUri('file:///x')).toBe('local-cache');
  });

  it('splits at the first @, refuses mutable refs unless allowed, and bounds lengths', () => {
    expect(parseModelRef('a/b@c@d').ok).toBe(false);
    expect(parseModelRef('a/b@main').ok).toBe(false);
    expect(parseModelRef('a/b@main', { allowMutableRef: true })).toMatchObject({ ok: true, ref: { backend: 'hf', mutable: true } });
    expect(parseModelRef(`a/b@${'ab'.repeat(20)}`, { backends: ['hippius'] }).ok).toBe(false);
    expect(parseModelRef(`a/${'b'.repeat(300)}@sha256:${'0'.repeat(64)}`).ok).toBe(false);
    expect(parseModelRef(`a//b@sha256:${'0'.repeat(64)}`).ok).toBe(false);
    expect(parseModelRef(42).ok).toBe(false);
  });

  it('checks the challenger naming rule (default pattern, stateful regexes are safe)', () => {
    expect(checkRepoName('alice/albedo-qwen3.6-35b-v1')).toBe(true);
    expect(checkRepoName('alice/albedo-qwen3x6-35b-v1')).toBe(false);
    expect(checkRepoName('alice/albedo-qwen3.6-35b-')).toBe(false);
    expect(checkRepoName('alice/x/albedo-qwen3.6-35b-v1', DEFAULT_REPO_NAME_PATTERN)).toBe(false);
    const g = /^a\/.+$/g;
    expect([checkRepoName('a/x', g), checkRepoName('a/x', g)]).toEqual([true, true]);
    expect(() => compileRepoNamePattern('([')).toThrow(/ALBEDO_REPO_NAME_PATTERN/);
  });
});

describe('LocalDirStore', () => {
  let root: string;
  let model: PublishedSyntheticModel;
  let outside: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'albedo-store-'));
    outside = await mkdtemp(join(tmpdir(), 'albedo-outside-'));
    await writeFile(join(outside, 'secret.json'), '{"secret": true}');
    model = await publishSyntheticModel(root, 'alice/albedo-qwen3.6-35b-s', {});
    await symlink(join(outside, 'secret.json'), join(model.dir, 'linked.json'));
    await symlink(outside, join(model.dir, 'linkdir'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('lists regular files (never symlinks) and reads ranges and JSON', async () => {
    const store = new LocalDirStore(root);
    const files = await store.listFiles(model.ref, signal());
    expect(files.map((f) => f.path).sort()).toEqual(model.files.map((f) => f.path).sort());
    expect(files.some((f) => f.path.startsWith('link'))).toBe(false);
    const prefix = await store.readRange(model.ref, 'model-00001-of-00002.safetensors', 0, 7, signal());
    expect(prefix.byteLength).toBe(8);
    expect(await store.readJson(model.ref, 'config.json', 1 << 20, signal())).toMatchObject({ model_type: 'qwen3_5_moe' });
  });

  it('makes path traversal impossible', async () => {
    const store = new LocalDirStore(root);
    for (const p of ['../../../etc/passwd', '/etc/passwd', 'a/../../x', 'linked.json', 'linkdir/secret.json', 'x\\..\\y', '']) {
      const e = await storeError(store.readJson(model.ref, p, 1 << 20, signal()));
      expect(['unavailable', 'not_found']).toContain(e.kind);
    }
    const evil = { ...model.ref, repo: '../..', digest: 'x' } as ModelRef;
    expect(() => localModelDir(root, evil)).toThrow(ModelStoreError);
    expect(() => localModelDir(root, { repo: 'a/b', digest: '../../x' })).toThrow(ModelStoreError);
  });

  it('classifies missing models and files, oversized and invalid JSON', async () => {
    const store = new LocalDirStore(root);
    const ghost = { ...model.ref, digest: `sha256:${'0'.repeat(64)}` };
    expect((await storeError(store.listFiles(ghost, signal()))).kind).toBe('not_found');
    expect((await storeError(store.readJson(model.ref, 'nope.json', 100, signal()))).kind).toBe('not_found');
    expect((await storeError(store.readJson(model.ref, 'config.json', 10, signal()))).kind).toBe('too_large');
    expect((await storeError(store.readJson(model.ref, 'model-00001-of-00002.safetensors', 1 << 20, signal()))).kind).toBe('invalid_json');
    expect((await storeError(store.readRange(model.ref, 'config.json', 0, 1 << 20, signal()))).kind).toBe('unavailable');
  });
});

describe('HfHubStore against the local hub', () => {
  let root: string;
  let hub: LocalHub;
  let model: PublishedSyntheticModel;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'albedo-hub-'));
    model = await publishSyntheticModel(root, 'bob/albedo-qwen3.6-35b-h', { backend: 'hf' });
    hub = await startLocalHub({ root, pageSize: 3, redirectResolve: true, token: 'sekrit' });
  });
  afterAll(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });

  const store = (over: Partial<ConstructorParameters<typeof HfHubStore>[0]> = {}) => new HfHubStore({ endpoint: hub.url, token: 'sekrit', timeoutMs: 5_000, ...over });

  it('lists through Link pagination and reads ranges after a redirect', async () => {
    const files = await store().listFiles(model.ref, signal());
    expect(files.map((f) => f.path).sort()).toEqual(model.files.map((f) => f.path).sort());
    const local = new LocalDirStore(root);
    const a = await store().readRange(model.ref, 'model-00002-of-00002.safetensors', 3, 40, signal());
    const b = await local.readRange(model.ref, 'model-00002-of-00002.safetensors', 3, 40, signal());
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(await store().readJson(model.ref, 'config.json', 1 << 20, signal())).toMatchObject({ model_type: 'qwen3_5_moe' });
    expect(hub.requests.some((r) => r.status === 302)).toBe(true);
  });

  it('classifies 404 as not_found and 401/403/429/5xx as unavailable', async () => {
    const ghost = { ...model.ref, repo: 'ghost/albedo-qwen3.6-35b-g' };
    expect(await storeError(store().listFiles(ghost, signal()))).toMatchObject({ kind: 'not_found', status: 404 });
    expect(await storeError(store().readJson(model.ref, 'missing.json', 100, signal()))).toMatchObject({ kind: 'not_found' });
    expect(await storeError(store({ token: undefined }).listFiles(model.ref, signal()))).toMatchObject({ kind: 'unavailable', status: 401 });
    for (const status of [403, 429, 500, 503]) {
      hub.setInterceptor(() => status);
      try {
        expect(await storeError(store().listFiles(model.ref, signal()))).toMatchObject({ kind: 'unavailable', status });
      } finally {
        hub.setInterceptor(undefined);
      }
    }
  });

  it('refuses a server that ignores Range, times out on a hung server, caps bodies', async () => {
    hub.setInterceptor((r) => (r.kind === 'resolve' ? 'ignore-range' : undefined));
    try {
      const e = await storeError(store().readRange(model.ref, 'config.json', 0, 7, signal()));
      expect(e.kind).toBe('unavailable');
      expect(e.message).toMatch(/did not honor Range \(status 200\)/);
    } finally {
      hub.setInterceptor(undefined);
    }
    hub.setInterceptor(() => 'hang');
    try {
      const e = await storeError(store({ timeoutMs: 200 }).listFiles(model.ref, signal()));
      expect(e).toMatchObject({ kind: 'unavailable' });
      expect(e.message).toMatch(/timed out/);
    } finally {
      hub.setInterceptor(undefined);
    }
    expect((await storeError(store().readJson(model.ref, 'config.json', 16, signal()))).kind).toBe('too_large');
    expect((await storeError(store().readJson(model.ref, 'model-00001-of-00002.safetensors', 1 << 20, signal()))).kind).toBe('invalid_json');
  });

  it('exposes the LFS sha256 of weights, streams ranges, and maps a mid-body reset to unavailable', async () => {
    const files = await store().listFiles(model.ref, signal());
    const shard = files.find((f) => f.path === 'model-00002-of-00002.safetensors');
    expect(shard?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const local = new LocalDirStore(root);
    const want = Buffer.from(await local.readRange(model.ref, 'model-00002-of-00002.safetensors', 0, 99, signal()));
    for (const s of [store(), local]) {
      const parts: Uint8Array[] = [];
      for await (const c of s.openRange(model.ref, 'model-00002-of-00002.safetensors', 0, 99, signal())) parts.push(c);
      expect(Buffer.concat(parts).equals(want)).toBe(true);
    }
    hub.setInterceptor((r) => (r.kind === 'resolve' && r.range ? 'reset' : undefined));
    try {
      const e = await storeError(store().readRange(model.ref, 'model-00002-of-00002.safetensors', 0, 99, signal()));
      expect(e.kind).toBe('unavailable');
      const streamed = (async () => {
        for await (const _ of store().openRange(model.ref, 'model-00002-of-00002.safetensors', 0, 99, signal())) {
          // drain
        }
      })();
      expect((await storeError(streamed)).kind).toBe('unavailable');
    } finally {
      hub.setInterceptor(undefined);
    }
  });

  it('maps a refused connection to unavailable', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const e = await storeError(new HfHubStore({ endpoint: `http://127.0.0.1:${port}` }).listFiles(model.ref, signal()));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/transport error/);
  });
});
