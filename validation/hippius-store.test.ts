import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModelChecks } from './checks.ts';
import { HippiusStore, mapRangeToChunks, parseBearerChallenge, parsePointer } from './hippius-store.ts';
import { type LocalRegistry, type PublishedRegistryModel, publishRegistryModel, publishSyntheticRegistryModel, startLocalRegistry, tamperRegistryManifest } from './local-registry.ts';
import { ModelStoreError } from './model-store.ts';
import { storeError } from '../tests/support/errors.ts';
import { createSyntheticModel, type SyntheticModel } from './synthetic-model.ts';

const signal = () => new AbortController().signal;


const SHARD = 'model-00001-of-00002.safetensors';

describe('HippiusStore against the local OCI registry', () => {
  let dir: string;
  let root: string;
  let registry: LocalRegistry;
  let model: SyntheticModel;
  let plain: PublishedRegistryModel;
  let chunked: PublishedRegistryModel;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'albedo-hip-src-'));
    root = await mkdtemp(join(tmpdir(), 'albedo-hip-reg-'));
    model = await createSyntheticModel(join(dir, 'm'));
    plain = await publishRegistryModel(root, 'alice/albedo-qwen3.6-35b-plain', model.dir);
    chunked = await publishRegistryModel(root, 'alice/albedo-qwen3.6-35b-chunk', model.dir, { chunked: (p) => p.endsWith('.safetensors') || p === 'config.json', chunkSize: 97, chunksPerPack: 3 });
    registry = await startLocalRegistry({ root });
  });
  afterAll(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });

  const store = () => new HippiusStore({ registry: registry.url, timeoutMs: 5_000 });

  it('lists the titled layers with sizes and sha256, plain and chunked', async () => {
    for (const published of [plain, chunked]) {
      const files = (await store().listFiles(published.ref, signal())).sort((a, b) => (a.path < b.path ? -1 : 1));
      expect(files).toEqual(published.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })));
      expect(files.map((f) => f.path)).toEqual(model.files.map((f) => f.path));
    }
  });

  it('reads JSON and ranges identical to the file, including ranges spanning chunk boundaries', async () => {
    const bytes = await readFile(join(model.dir, SHARD));
    for (const published of [plain, chunked]) {
      const s = store();
      expect(await s.readJson(published.ref, 'config.json', 1 << 20, signal())).toMatchObject({ model_type: 'qwen3_5_moe' });
      // 90..300 crosses chunk boundaries at 97, 194, 291 and a pack boundary at 291.
      for (const [a, b] of [
        [0, 7],
        [90, 300],
        [96, 97],
        [0, bytes.byteLength - 1],
        [bytes.byteLength - 1, bytes.byteLength - 1],
      ] as const) {
        const got = await s.readRange(published.ref, SHARD, a, b, signal());
        expect(Buffer.from(got).equals(bytes.subarray(a, b + 1))).toBe(true);
      }
      const streamed: Uint8Array[] = [];
      for await (const c of s.openRange(published.ref, SHARD, 5, 500, signal())) streamed.push(c);
      expect(Buffer.concat(streamed).equals(bytes.subarray(5, 501))).toBe(true);
    }
    expect((await storeError(store().readRange(chunked.ref, SHARD, 0, bytes.byteLength, signal()))).kind).toBe('unavailable');
  });

  it('maps 404 to not_found and errors/ignored ranges to unavailable', async () => {
    const ghost = { ...plain.ref, digest: `sha256:${'1'.repeat(64)}`, uri: `${plain.ref.repo}@sha256:${'1'.repeat(64)}` };
    expect(await storeError(store().listFiles(ghost, signal()))).toMatchObject({ kind: 'not_found', status: 404 });
    expect((await storeError(store().readJson(plain.ref, 'missing.json', 100, signal()))).kind).toBe('not_found');
    for (const status of [401, 403, 429, 500, 503]) {
      registry.setInterceptor(() => status);
      try {
        expect(await storeError(store().listFiles(plain.ref, signal()))).toMatchObject({ kind: 'unavailable', status });
      } finally {
        registry.setInterceptor(undefined);
      }
    }
    const s = store();
    await s.listFiles(plain.ref, signal());
    registry.setInterceptor((r) => (r.kind === 'blob' ? 'ignore-range' : undefined));
    try {
      expect((await storeError(s.readRange(plain.ref, SHARD, 0, 7, signal()))).message).toMatch(/did not honor Range \(status 200\)/);
    } finally {
      registry.setInterceptor(undefined);
    }
    expect((await storeError(s.readJson(plain.ref, 'config.json', 16, signal()))).kind).toBe('too_large');
  });

  it('refuses a manifest that does not hash to the pinned digest', async () => {
    const copy = await publishRegistryModel(root, 'alice/albedo-qwen3.6-35b-tamper', model.dir);
    const original = await readFile(join(root, 'repos', 'alice', 'albedo-qwen3.6-35b-tamper', 'manifests', copy.manifestDigest.replace(':', '_')));
    const tampered = Buffer.from(original.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2'));
    expect(createHash('sha256').update(tampered).digest('hex')).not.toBe(copy.manifestDigest.slice(7));
    await tamperRegistryManifest(root, copy.ref, tampered);
    const e = await storeError(store().listFiles(copy.ref, signal()));
    expect(e.kind).toBe('unavailable');
    expect(e.message).toMatch(/not the pinned digest/);
  });

  it('a published manifest that hashes to its digest but is invalid is malformed, and the checks make it the MINER fault file_manifest', async () => {
    const bytes = Buffer.from('{"schemaVersion":2,"layers":"not a list"}');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const ref = { repo: 'mallory/albedo-qwen3.6-35b-bad', digest, backend: 'hippius' as const, mutable: false, uri: `mallory/albedo-qwen3.6-35b-bad@${digest}` };
    await mkdir(join(root, 'repos', 'mallory', 'albedo-qwen3.6-35b-bad', 'manifests'), { recursive: true });
    await tamperRegistryManifest(root, ref, bytes);
    const e = await storeError(store().listFiles(ref, signal()));
    expect(e.kind).toBe('malformed');
    const report = await runModelChecks(ref.uri, { store: store(), notFoundRecheckMs: 0 }, signal());
    expect(report.fault).toMatchObject({ faultClass: 'MINER_FAULT', code: 'file_manifest' });
    expect(report.fault?.message).toMatch(/^invalid published artifact: /);
  });

  it('refuses blobs that do not hash to their layer digest (whole-blob JSON reads and pointers)', async () => {
    const own = await mkdtemp(join(tmpdir(), 'albedo-hip-tamper-'));
    const reg = await startLocalRegistry({ root: own });
    try {
      const p = await publishRegistryModel(own, 'carol/albedo-qwen3.6-35b-t', model.dir, { chunked: (x) => x === SHARD });
      const config = p.files.find((f) => f.path === 'config.json');
      await writeFile(join(own, 'blobs', 'sha256', config?.sha256 ?? ''), `${' '.repeat((config?.size ?? 1) - 2)}{}`);
      const s = new HippiusStore({ registry: reg.url, timeoutMs: 5_000 });
      expect((await storeError(s.readJson(p.ref, 'config.json', 1 << 20, signal()))).message).toMatch(/does not hash to its layer digest/);
      const manifest = JSON.parse(await readFile(join(own, 'repos', 'carol', 'albedo-qwen3.6-35b-t', 'manifests', p.manifestDigest.replace(':', '_')), 'utf8')) as {
        layers: Array<{ digest: string; mediaType: string }>;
      };
      const pointerDigest = manifest.layers.find((l) => l.mediaType === 'application/vnd.hippius.pointer.v2')?.digest ?? '';
      await writeFile(join(own, 'blobs', 'sha256', pointerDigest.slice(7)), '{"version":2,"size":0,"chunks":[]}');
      expect((await storeError(s.listFiles(p.ref, signal()))).message).toMatch(/hashes to .*not its layer digest/);
    } finally {
      await reg.close();
      await rm(own, { recursive: true, force: true });
    }
  });

  it('follows the registry token flow (401 challenge, realm with basic auth, one retry)', async () => {
    const authed = await startLocalRegistry({ root, auth: { mode: 'token-flow', username: 'miner', password: 'pw' } });
    try {
      const s = new HippiusStore({ registry: authed.url, username: 'miner', password: 'pw', timeoutMs: 5_000 });
      const files = await s.listFiles(chunked.ref, signal());
      expect(files.length).toBe(model.files.length);
      const got = await s.readRange(chunked.ref, SHARD, 0, 7, signal());
      expect(got.byteLength).toBe(8);
      expect(authed.tokensIssued()).toBe(1); // the token is cached per repository
      expect(authed.requests.some((r) => r.status === 401)).toBe(true);
      const wrong = new HippiusStore({ registry: authed.url, username: 'miner', password: 'nope', timeoutMs: 5_000 });
      expect(await storeError(wrong.listFiles(chunked.ref, signal()))).toMatchObject({ kind: 'unavailable', status: 401 });
      const anon = new HippiusStore({ registry: authed.url, timeoutMs: 5_000 });
      expect((await storeError(anon.listFiles(chunked.ref, signal()))).kind).toBe('unavailable');
    } finally {
      await authed.close();
    }
    const bearer = await startLocalRegistry({ root, auth: { mode: 'bearer', token: 'hub-token' } });
    try {
      expect((await new HippiusStore({ registry: bearer.url, token: 'hub-token' }).listFiles(plain.ref, signal())).length).toBe(model.files.length);
      expect(await storeError(new HippiusStore({ registry: bearer.url, token: 'x' }).listFiles(plain.ref, signal()))).toMatchObject({ kind: 'unavailable', status: 401 });
    } finally {
      await bearer.close();
    }
  });
});

describe('publishSyntheticRegistryModel', () => {
  it('publishes a synthetic model whose listing matches its files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'albedo-hip-synth-'));
    const registry = await startLocalRegistry({ root });
    try {
      const p = await publishSyntheticRegistryModel(root, 'dave/albedo-qwen3.6-35b-s', { shards: 1, chunked: (x) => x.endsWith('.safetensors') });
      const files = await new HippiusStore({ registry: registry.url }).listFiles(p.ref, signal());
      expect(files.map((f) => f.path).sort()).toEqual(p.model.files.map((f) => f.path));
      expect(p.ref.digest).toBe(p.manifestDigest);
    } finally {
      await registry.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('pointer and manifest parsing', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  const ok = { version: 2, size: 10, chunks: [{ size: 4, pack_digest: d, pack_offset: 3 }, { size: 6, pack_digest: d, pack_offset: 100 }] };
  const bytes = (v: unknown) => Buffer.from(JSON.stringify(v));

  it('accepts the documented format and maps ranges onto chunks', () => {
    const p = parsePointer(bytes(ok), 'p');
    expect(mapRangeToChunks(p, 2, 5)).toEqual([
      { packDigest: d, from: 5, to: 6 },
      { packDigest: d, from: 100, to: 101 },
    ]);
    expect(mapRangeToChunks(p, 9, 9)).toEqual([{ packDigest: d, from: 105, to: 105 }]);
  });

  it('refuses malformed pointers', () => {
    const bad: unknown[] = [
      [],
      { ...ok, version: 1 },
      { ...ok, size: 11 },
      { ...ok, extra: 1 },
      { ...ok, sha256: 'ABC' },
      { ...ok, chunks: [{ size: 0, pack_digest: d, pack_offset: 0 }] },
      { ...ok, chunks: [{ size: 10, pack_digest: 'md5:x', pack_offset: 0 }] },
      { ...ok, chunks: [{ size: 10, pack_digest: d, pack_offset: -1 }] },
      { ...ok, chunks: [{ size: 10, pack_digest: d, pack_offset: 0, x: 1 }] },
      { ...ok, size: 2 ** 60, chunks: [{ size: 2 ** 60, pack_digest: d, pack_offset: 2 ** 60 }] },
    ];
    for (const b of bad) expect(() => parsePointer(bytes(b), 'p'), JSON.stringify(b)).toThrow(ModelStoreError);
    expect(() => parsePointer(Buffer.from('{'), 'p')).toThrow(/not valid JSON/);
  });

  it('parses bearer challenges', () => {
    expect(parseBearerChallenge('Bearer realm="https://auth.x/token",service="reg",scope="repository:a/b:pull"')).toEqual({ realm: 'https://auth.x/token', service: 'reg', scope: 'repository:a/b:pull' });
    expect(parseBearerChallenge('Basic realm="x"')).toBeNull();
    expect(parseBearerChallenge(null)).toBeNull();
  });
});
