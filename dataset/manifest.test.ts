/** Manifest loading: the §6 pin check on raw bytes, size caps, and the validated-value brand. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isMultiSourceManifest,
  isSweZeroManifest,
  loadMultiSourceManifest,
  loadSweZeroManifest,
  MAX_MANIFEST_SHARDS,
  normaliseSha256,
  parseMultiSourceManifest,
  parseSweZeroManifest,
  readManifestFile,
  sha256Hex,
  verifyManifestPin,
} from './manifest.ts';
import { datasetRejection as rejection } from '../tests/support/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'albedo-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const V1 = { shards: [{ name: 'data/train-00000-of-00001.parquet', rows: 3, sha256: 'AB'.repeat(32) }], total_rows: 3 };
const V2 = {
  version: 1,
  sources: [
    { name: 'b', shards: [{ path: 'b/data/train-0.parquet', rows: 1, rows_meta: [{ iid: 'x.1', asst: 3 }] }], total_rows: 1 },
    { name: 'a', shards: [], total_rows: 0 },
  ],
  total_rows: 1,
};

function write(name: string, content: string | Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}


describe('manifest pin (§6)', () => {
  const bytes = Buffer.from(`${JSON.stringify(V1, null, 2)}\n`);
  const digest = sha256Hex(bytes);

  it('accepts the pin with or without a sha256: prefix, in any case', () => {
    for (const pin of [digest, `sha256:${digest}`, ` SHA256:${digest.toUpperCase()} `]) expect(() => verifyManifestPin(bytes, pin)).not.toThrow();
    expect(normaliseSha256('sha256:ABC')).toBe('abc');
  });

  it('mismatch: the spec message, with the pin stripped of its prefix', () => {
    const wrong = '0'.repeat(64);
    expect(() => verifyManifestPin(bytes, `sha256:${wrong}`)).toThrow(
      expect.objectContaining({ code: 'manifest_hash_mismatch', message: `dataset manifest hash mismatch: expected ${wrong}, got ${digest}` }),
    );
  });

  it('is checked on the raw bytes: the same JSON formatted differently does not pass', async () => {
    const compact = write('compact.json', JSON.stringify(V1));
    expect((await rejection(readManifestFile(compact, { expectedSha256: digest }))).code).toBe('manifest_hash_mismatch');
    const exact = write('exact.json', bytes);
    const file = await readManifestFile(exact, { expectedSha256: digest });
    expect(file).toEqual({ sha256: digest, byteLength: bytes.length, json: V1 });
    const manifest = await loadSweZeroManifest(exact, { expectedSha256: `sha256:${digest}` });
    expect(manifest.shards[0]).toEqual({ name: 'data/train-00000-of-00001.parquet', rows: 3, sha256: 'ab'.repeat(32) });
  });
});

describe('manifest files', () => {
  it('refuses files over the byte cap before reading them', async () => {
    const file = write('big.json', `{"shards": [], "pad": "${'x'.repeat(2000)}"}`);
    const error = await rejection(readManifestFile(file, { maxBytes: 1000 }));
    expect(error.code).toBe('manifest_too_large');
  });

  it('unreadable and non-JSON files are DatasetErrors', async () => {
    expect((await rejection(readManifestFile(join(dir, 'missing.json')))).code).toBe('manifest_unreadable');
    expect((await rejection(readManifestFile(write('bad.json', '{"shards": [,]}')))).code).toBe('manifest_unreadable');
    expect((await rejection(readManifestFile(dir))).code).toBe('manifest_unreadable');
  });

  it('loads a v2 manifest with sources sorted by name', async () => {
    const manifest = await loadMultiSourceManifest(write('v2.json', JSON.stringify(V2)));
    expect(manifest.sources.map((s) => s.name)).toEqual(['a', 'b']);
    expect(manifest.sources[1]!.shards[0]).toMatchObject({ name: 'b/data/train-0.parquet', rows: 1, sha256: null });
    expect(manifest.totalRows).toBe(1);
  });
});

describe('manifest validation details', () => {
  it('caps the shard count', () => {
    const shards = Array.from({ length: MAX_MANIFEST_SHARDS + 1 }, () => ({ name: 'data/train-0.parquet', rows: 0 }));
    expect(() => parseSweZeroManifest({ shards })).toThrow(expect.objectContaining({ code: 'manifest_too_large' }));
  });

  it('validated values carry an unforgeable brand', () => {
    const parsed = parseSweZeroManifest(V1);
    expect(isSweZeroManifest(parsed)).toBe(true);
    expect(isSweZeroManifest({ ...parsed })).toBe(false);
    expect(isMultiSourceManifest(parsed)).toBe(false);
    expect(isMultiSourceManifest(parseMultiSourceManifest(V2))).toBe(true);
    expect(Object.isFrozen(parsed.shards)).toBe(true);
  });

  it('a null total_rows counts as absent; name falls back to path', () => {
    expect(parseSweZeroManifest({ shards: [{ name: '', path: 'data/train-1.parquet', rows: 2 }], total_rows: null }).totalRows).toBe(2);
  });
});
