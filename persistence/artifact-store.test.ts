/**
 * Both artifact store backends against real storage: an in-process s3rver (SigV4-checked S3 protocol
 * on 127.0.0.1) and a temp directory.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Standin, type S3Standin } from '../persistence/s3-standin.ts';
import {
  type ArtifactStore,
  ArtifactStoreError,
  artifactStoreFromEnv,
  DEFAULT_PUBLIC_ARTIFACT_TYPES,
  LocalDirArtifactStore,
  MAX_ARTIFACT_OBJECT_BYTES,
  parsePublicArtifactTypes,
  publicArtifactUrl,
  S3ArtifactStore,
  sha256Tagged,
  validateArtifactKey,
} from './artifact-store.ts';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (error) {
    return error instanceof ArtifactStoreError ? error.code : `foreign: ${String(error)}`;
  }
}

async function errorOf(p: Promise<unknown>): Promise<ArtifactStoreError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof ArtifactStoreError) return error;
    throw error;
  }
  throw new Error('expected an ArtifactStoreError');
}

const BAD_KEYS = ['', '/abs/key', 'a/../b', '../up', 'a//b', './a', 'a/.', 'dir/', 'a\\b', 'a b', 'ü/x', 'a\nb', '.hidden', `${'x'.repeat(256)}`, `${'abc/'.repeat(300)}z`];

let s3: S3Standin;
let s3Store: S3ArtifactStore;
const root = await mkdtemp(join(tmpdir(), 'albedo-artifact-store-'));

beforeAll(async () => {
  s3 = await startS3Standin();
  s3Store = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, backoffBaseMs: 0 });
});
afterAll(async () => {
  s3Store?.close();
  await s3?.close();
  await rm(root, { recursive: true, force: true });
});

describe('keys and URLs', () => {
  it('accepts ordinary keys and rejects traversal, absolute, empty-segment, odd-character and over-long keys', () => {
    expect(validateArtifactKey('hippius_validation/5Grw/sha256_ab/fault.json')).toBe('hippius_validation/5Grw/sha256_ab/fault.json');
    expect(validateArtifactKey('submissions/1b2c-3d/eval/9f/verdict.json')).toBeTruthy();
    for (const key of BAD_KEYS) expect(() => validateArtifactKey(key), JSON.stringify(key)).toThrow(ArtifactStoreError);
  });

  it('rewrites s3 URIs for the dashboard per spec/dashboard.md §5', () => {
    expect(publicArtifactUrl('s3://albedo-artifacts/a/b.json')).toBe('https://s3.hippius.com/albedo-artifacts/a/b.json');
    expect(publicArtifactUrl('s3://albedo-artifacts/a/b.json', { baseUrl: 'https://cdn.example/', baseIncludesBucket: true })).toBe('https://cdn.example/a/b.json');
    expect(publicArtifactUrl('https://x.example/y')).toBe('https://x.example/y');
    expect(publicArtifactUrl('file:///tmp/x.json')).toBeNull();
    expect(publicArtifactUrl('hf://org/repo@' + 'a'.repeat(40))).toBeNull();
  });

  it('parses ALBEDO_PUBLIC_ARTIFACT_TYPES: unset ⇒ default, empty ⇒ none, unknown ⇒ config error', () => {
    expect(parsePublicArtifactTypes(undefined)).toEqual(DEFAULT_PUBLIC_ARTIFACT_TYPES);
    expect(parsePublicArtifactTypes('')).toEqual([]);
    expect(parsePublicArtifactTypes(' EVAL_VERDICT , VALIDATION_FAULT')).toEqual(['EVAL_VERDICT', 'VALIDATION_FAULT']);
    expect(() => parsePublicArtifactTypes('EVAL_VERDICT,SECRET_STUFF')).toThrow(/unknown artifact type/);
    expect(DEFAULT_PUBLIC_ARTIFACT_TYPES).not.toContain('EVAL_REQUEST');
  });
});

describe('artifactStoreFromEnv', () => {
  it('returns null when the bucket or a key is unset (uploads skipped)', () => {
    expect(artifactStoreFromEnv({})).toBeNull();
    expect(artifactStoreFromEnv({ ALBEDO_S3_BUCKET: 'albedo-x', ALBEDO_S3_ACCESS_KEY: 'k' })).toBeNull();
  });

  it('builds an S3 store, with ALBEDO_REMOTE_S3_* falling back per variable to ALBEDO_S3_*', () => {
    const env = { ALBEDO_S3_BUCKET: 'albedo-main', ALBEDO_S3_ACCESS_KEY: 'k', ALBEDO_S3_SECRET_KEY: 'topsecret-value', ALBEDO_REMOTE_S3_BUCKET: 'albedo-remote' };
    const main = artifactStoreFromEnv(env) as S3ArtifactStore;
    const remote = artifactStoreFromEnv(env, { envPrefix: 'ALBEDO_REMOTE_S3_' }) as S3ArtifactStore;
    expect(main.kind).toBe('s3');
    expect(main.bucket).toBe('albedo-main');
    expect(remote.bucket).toBe('albedo-remote');
    expect(main.endpoint).toBe('https://s3.hippius.com');
    expect(inspect(main, { depth: 10 })).not.toContain('topsecret-value');
    expect(JSON.stringify(main)).not.toContain('topsecret-value');
    main.close();
    remote.close();
  });

  it('returns a local store for an explicit local dir, and rejects bad config', () => {
    expect(artifactStoreFromEnv({}, { localDir: root })?.kind).toBe('local');
    expect(() => artifactStoreFromEnv({ ALBEDO_S3_BUCKET: 'Bad_Bucket', ALBEDO_S3_ACCESS_KEY: 'k', ALBEDO_S3_SECRET_KEY: 's' })).toThrow(/bucket name/);
    expect(() => artifactStoreFromEnv({ ALBEDO_S3_BUCKET: 'albedo-x', ALBEDO_S3_ACCESS_KEY: 'k', ALBEDO_S3_SECRET_KEY: 's', ALBEDO_S3_ENDPOINT: 'ftp://x' })).toThrow(/http/);
  });
});

/** Behaviour both backends share. */
function sharedSuite(name: string, make: () => ArtifactStore) {
  describe(`${name}: shared behaviour`, () => {
    it('puts, heads and gets an object; a re-put of the same bytes is a no-op', async () => {
      const store = make();
      const body = '{\n  "a": 1\n}';
      const rec = await store.put('shared/roundtrip/obj.json', body, { contentType: 'application/json', artifactType: 'EVAL_VERDICT' });
      expect(rec).toMatchObject({ objectKey: 'shared/roundtrip/obj.json', sha256: sha256Tagged(Buffer.from(body)), sizeBytes: Buffer.byteLength(body), contentType: 'application/json', artifactType: 'EVAL_VERDICT', uploaded: true });
      expect(rec.uri).toBe(store.uriOf('shared/roundtrip/obj.json'));
      expect(Buffer.from(await store.get(rec.uri)).toString('utf8')).toBe(body);
      expect(await store.head(rec.uri)).toMatchObject({ sizeBytes: rec.sizeBytes, sha256: rec.sha256, contentType: 'application/json' });
      const again = await store.put('shared/roundtrip/obj.json', Buffer.from(body), { contentType: 'application/json', artifactType: 'EVAL_VERDICT' });
      expect(again).toEqual({ ...rec, uploaded: false });
    });

    it('refuses different bytes at an existing key (conflict) and keeps the original', async () => {
      const store = make();
      const rec = await store.put('shared/conflict.txt', 'first', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' });
      const err = await errorOf(store.put('shared/conflict.txt', 'second', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' }));
      expect(err.code).toBe('conflict');
      expect(err.message).toContain('immutable');
      expect(Buffer.from(await store.get(rec.uri)).toString()).toBe('first');
    });

    it('replaces different bytes only when asked (latest-state documents)', async () => {
      const store = make();
      const opts = { contentType: 'application/json', artifactType: 'VALIDATION_FAULT' as const, replace: true };
      const a = await store.put('shared/replace/fault.json', '{"v":1}', opts);
      const b = await store.put('shared/replace/fault.json', '{"v":2}', opts);
      const c = await store.put('shared/replace/fault.json', '{"v":2}', opts);
      expect([a.uploaded, b.uploaded, c.uploaded]).toEqual([true, true, false]);
      expect(Buffer.from(await store.get(b.uri)).toString()).toBe('{"v":2}');
      expect((await store.head(b.uri))?.sha256).toBe(b.sha256);
    });

    it('caps object sizes on put and on get', async () => {
      const store = make();
      expect(await codeOf(store.put('shared/huge.bin', Buffer.allocUnsafe(MAX_ARTIFACT_OBJECT_BYTES + 1), { contentType: 'application/octet-stream', artifactType: 'REMOTE_LOGS' }))).toBe('too_large');
      const rec = await store.put('shared/ten.bin', Buffer.alloc(10, 7), { contentType: 'application/octet-stream', artifactType: 'REMOTE_LOGS' });
      expect(await codeOf(store.get(rec.uri, { maxBytes: 9 }))).toBe('too_large');
      expect((await store.get(rec.uri, { maxBytes: 10 })).byteLength).toBe(10);
    });

    it('rejects invalid keys before any I/O', async () => {
      const store = make();
      for (const key of BAD_KEYS) expect(await codeOf(store.put(key, 'x', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' })), JSON.stringify(key)).toBe('invalid_key');
    });

    it('reports a missing object as not_found on get and null on head', async () => {
      const store = make();
      const uri = store.uriOf('shared/missing/nothing.json');
      expect(await codeOf(store.get(uri))).toBe('not_found');
      expect(await store.head(uri)).toBeNull();
    });

    it('uploads a nested directory in code-point order with `last` files at the end, skipping null types', async () => {
      const store = make();
      const dir = await mkdtemp(join(root, 'spool-'));
      await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
      await writeFile(join(dir, 'verdict.json'), '{"v":1}');
      await writeFile(join(dir, 'request.json'), '{"r":1}');
      await writeFile(join(dir, 'sub', 'b.jsonl'), '{"b":1}\n');
      await writeFile(join(dir, 'sub', 'deeper', 'c.txt'), 'c=1\n');
      await writeFile(join(dir, 'ignored.tmp'), 'junk');
      const prefix = `dir-${name}`;
      const recs = await store.putDirectory(prefix, dir, {
        artifactTypeOf: (rel) => (rel.endsWith('.tmp') ? null : rel === 'verdict.json' ? 'EVAL_VERDICT' : 'REMOTE_LOGS'),
        metadataOf: (rel) => ({ artifact_name: rel.replaceAll('/', '_') }),
        last: ['verdict.json'],
      });
      expect(recs.map((r) => r.objectKey)).toEqual([`${prefix}/request.json`, `${prefix}/sub/b.jsonl`, `${prefix}/sub/deeper/c.txt`, `${prefix}/verdict.json`]);
      expect(recs.map((r) => r.contentType)).toEqual(['application/json', 'application/x-ndjson', 'text/plain; charset=utf-8', 'application/json']);
      expect(Buffer.from(await store.get(recs[2]!.uri)).toString()).toBe('c=1\n');
      expect(recs[3]!.artifactType).toBe('EVAL_VERDICT');
    });

    it('refuses a directory containing a symlink and uploads nothing from it', async () => {
      const store = make();
      const dir = await mkdtemp(join(root, 'evil-'));
      await writeFile(join(root, 'outside-secret.txt'), 'secret');
      await writeFile(join(dir, 'a.json'), '{}');
      await symlink(join(root, 'outside-secret.txt'), join(dir, 'z-link.txt'));
      const prefix = `evil-${name}`;
      const err = await errorOf(store.putDirectory(prefix, dir, { artifactTypeOf: () => 'REMOTE_LOGS' }));
      expect(err.code).toBe('invalid_key');
      expect(err.message).toContain('symlink');
      expect(await store.head(store.uriOf(`${prefix}/a.json`))).toBeNull();
    });
  });
}

sharedSuite('s3', () => s3Store);
sharedSuite('local', () => new LocalDirArtifactStore(join(root, 'store')));

describe('S3ArtifactStore specifics', () => {
  it('uploads public-read only for opted-in types, visible on the wire (s3rver does not keep ACLs)', async () => {
    const from = s3.requests.length;
    const pub = await s3Store.put('acl/fault.json', '{}', { contentType: 'application/json', artifactType: 'VALIDATION_FAULT' });
    const priv = await s3Store.put('acl/request.json', '{}', { contentType: 'application/json', artifactType: 'EVAL_REQUEST' });
    expect(pub.public).toBe(true);
    expect(priv.public).toBe(false);
    const puts = s3.requests.slice(from).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => [r.url.split('?')[0], r.acl])).toEqual([
      [`/${s3.bucket}/acl/fault.json`, 'public-read'],
      [`/${s3.bucket}/acl/request.json`, undefined],
    ]);
    const none = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, publicArtifactTypes: [] });
    expect((await none.put('acl/fault-private.json', '{}', { contentType: 'application/json', artifactType: 'VALIDATION_FAULT' })).public).toBe(false);
    expect(s3.requests.at(-1)?.acl).toBeUndefined();
    none.close();
  });

  it('does not re-upload identical bytes (HEAD only) and stores the sha256 as object metadata', async () => {
    await s3Store.put('idem/x.json', '[1]', { contentType: 'application/json', artifactType: 'SCORING_RESULTS', metadata: { eval_run_id: 'run-1' } });
    const from = s3.requests.length;
    const again = await s3Store.put('idem/x.json', '[1]', { contentType: 'application/json', artifactType: 'SCORING_RESULTS' });
    expect(again.uploaded).toBe(false);
    expect(s3.requests.slice(from).map((r) => r.method)).toEqual(['HEAD']);
    expect((await s3Store.head(again.uri))?.sha256).toBe(sha256Tagged(Buffer.from('[1]')));
  });

  it('compares content when a foreign object at the key has no sha256 metadata', async () => {
    const raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'foreign/a.txt', Body: 'hello' }));
    await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'foreign/b.txt', Body: 'hello' }));
    raw.destroy();
    expect((await s3Store.put('foreign/a.txt', 'hello', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' })).uploaded).toBe(false);
    expect(await codeOf(s3Store.put('foreign/b.txt', 'HELLO', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' }))).toBe('conflict');
  });

  it('refuses URIs of another bucket or scheme', async () => {
    expect(await codeOf(s3Store.get('s3://other-bucket/a.json'))).toBe('invalid_key');
    expect(await codeOf(s3Store.get('file:///etc/passwd'))).toBe('invalid_key');
    expect(await codeOf(s3Store.get(`s3://${s3.bucket}/a/../b`))).toBe('invalid_key');
  });

  it('reports rejected credentials as unavailable without printing the secret', async () => {
    // s3rver checks the access key id but not SigV4 signatures, so a wrong *secret* cannot be
    // rejected here; an unknown key id exercises the same 403 path a real S3 takes for a bad secret.
    const secret = 'wrong-secret-do-not-print-9f8e7d';
    const bad = new S3ArtifactStore({ endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: 'NOT-A-KNOWN-KEY', secretAccessKey: secret, region: s3.region, backoffBaseMs: 0 });
    const err = await errorOf(bad.put('auth/x.json', '{}', { contentType: 'application/json', artifactType: 'EVAL_VERDICT' }));
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/rejected the request/);
    expect(err.message).not.toContain(secret);
    expect(inspect(err, { depth: 10 })).not.toContain(secret);
    expect(inspect(bad, { depth: 10 })).not.toContain(secret);
    bad.close();
  });

  it('retries transient 503s and then succeeds (a real proxy in front of s3rver answers 503 twice)', async () => {
    let refusals = 2;
    const proxy = createHttpServer((req, res) => {
      if (refusals > 0) {
        refusals -= 1;
        req.resume();
        res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>busy</Message></Error>');
        return;
      }
      const target = new URL(s3.endpoint);
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    const flaky = new S3ArtifactStore({ endpoint: `http://127.0.0.1:${port}`, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, maxAttempts: 3, backoffBaseMs: 0 });
    try {
      const rec = await flaky.put('retry/ok.json', '{"ok":true}', { contentType: 'application/json', artifactType: 'EVAL_VERDICT' });
      expect(refusals).toBe(0);
      expect(Buffer.from(await s3Store.get(rec.uri)).toString()).toBe('{"ok":true}');
    } finally {
      flaky.close();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('retries an unreachable endpoint, then reports unavailable', async () => {
    // A port that was just free: connection refused is a transient error.
    const port = await new Promise<number>((resolvePort) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolvePort(p));
      });
    });
    const down = new S3ArtifactStore({ endpoint: `http://127.0.0.1:${port}`, bucket: s3.bucket, accessKeyId: 'k', secretAccessKey: 's3cr3t-unreachable', maxAttempts: 3, backoffBaseMs: 0 });
    const err = await errorOf(down.head(`s3://${s3.bucket}/x.json`));
    expect(err.code).toBe('unavailable');
    expect(err.message).toContain('after 3 attempts');
    expect(err.message).not.toContain('s3cr3t-unreachable');
    down.close();
  });
});

describe('LocalDirArtifactStore specifics', () => {
  it('writes file:// URIs under its root atomically, leaving no temp files', async () => {
    const storeRoot = join(root, 'local-atomic');
    const store = new LocalDirArtifactStore(storeRoot);
    const rec = await store.put('a/b/c.json', '{}', { contentType: 'application/json', artifactType: 'EVAL_VERDICT' });
    expect(rec.uri).toBe(pathToFileURL(join(storeRoot, 'a', 'b', 'c.json')).href);
    expect(rec.bucket).toBeNull();
    expect(rec.public).toBe(false);
    expect(await readFile(join(storeRoot, 'a', 'b', 'c.json'), 'utf8')).toBe('{}');
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(storeRoot, 'a', 'b'))).toEqual(['c.json']);
  });

  it('refuses URIs outside its root and symlinked objects', async () => {
    const storeRoot = join(root, 'local-guard');
    const store = new LocalDirArtifactStore(storeRoot);
    await store.put('ok.txt', 'ok', { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' });
    expect(await codeOf(store.get(pathToFileURL(join(root, 'outside-secret.txt')).href))).toBe('invalid_key');
    expect(await codeOf(store.get(`${pathToFileURL(storeRoot).href}/../outside-secret.txt`))).toBe('invalid_key');
    await writeFile(join(root, 'target.txt'), 'secret');
    await symlink(join(root, 'target.txt'), join(storeRoot, 'link.txt'));
    expect(await codeOf(store.get(store.uriOf('link.txt')))).toBe('invalid_key');
    expect(await codeOf(store.get('s3://bucket/key'))).toBe('invalid_key');
  });

  it('two concurrent writers of different bytes: exactly one wins, the other gets conflict', async () => {
    const store = new LocalDirArtifactStore(join(root, 'local-race'));
    const results = await Promise.all(['one', 'two'].map((b) => codeOf(store.put('race.txt', b, { contentType: 'text/plain', artifactType: 'REMOTE_LOGS' }))));
    expect(results.sort()).toEqual(['conflict', 'resolved']);
  });
});
