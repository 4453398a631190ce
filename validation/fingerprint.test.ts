import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_SALTS, fixtureShards } from '../tests/fixtures/fingerprint/models.ts';
import { closeFingerprintWorkers, fingerprintModel, FingerprintError, fingerprintJson, sampleModelWeights } from './fingerprint.ts';
import { DIVERGENCE_CORPUS_SALT, DIVERGENCE_SAMPLES, type ModelFingerprint } from './fingerprint-types.ts';
import { encodeSafetensors, encodeSafetensorsRaw } from './synthetic-model.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..');
const fixtureDir = join(repoRoot, 'tests/fixtures/fingerprint');

interface Expected {
  fingerprint_json: string;
  fingerprint: { layer_keys: string[]; norm_vector: number[]; tensor_samples: number[][] };
  norm_hex: string[];
  file_sha256: Record<string, string>;
  weights_hash: string;
  samples: Record<string, number[][]>;
}

/** Python `float.fromhex` for the exact reference doubles. */
function fromHex(hex: string): number {
  const m = /^(-?)0x([01])\.([0-9a-f]+)p([+-]\d+)$/.exec(hex);
  if (!m) {
    if (hex === '0x0.0p+0') return 0;
    throw new Error(`bad hex float ${hex}`);
  }
  const [, sign, lead, frac, exp] = m as unknown as [string, string, string, string, string];
  const mant = Number(lead) + Number.parseInt(frac, 16) / 16 ** frac.length;
  return (sign ? -1 : 1) * mant * 2 ** Number(exp);
}

let tmp: string;
let expected: Expected;
const modelDir = join(fixtureDir, 'model');
const extraSalt = FIXTURE_SALTS[1];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'albedo-fingerprint-'));
  expected = JSON.parse(await readFile(join(fixtureDir, 'expected.json'), 'utf8')) as Expected;
});
afterAll(async () => {
  await closeFingerprintWorkers();
  await rm(tmp, { recursive: true, force: true });
});

function expectMatchesFixture(fp: ModelFingerprint): void {
  expect(fp.fingerprint.layer_keys).toEqual(expected.fingerprint.layer_keys);
  // Exact doubles: toEqual on numbers is Object.is, and the hex strings are exact.
  expect(fp.fingerprint.norm_vector).toEqual(expected.norm_hex.map(fromHex));
  expect(fp.fingerprint.norm_vector).toEqual(expected.fingerprint.norm_vector);
  expect(fp.fingerprint.tensor_samples).toEqual(expected.fingerprint.tensor_samples);
  expect(fp.weightsHash).toBe(expected.weights_hash);
  expect(fp.fileSha256).toEqual(expected.file_sha256);
  expect(fp.nTensors).toBe(expected.fingerprint.layer_keys.length);
  expect(fp.samples.map((s) => s.salt)).toEqual([...FIXTURE_SALTS]);
  for (const s of fp.samples) {
    expect(s.keys).toEqual(expected.fingerprint.layer_keys);
    expect(Array.from(s.values)).toEqual((expected.samples[s.salt] as number[][]).flat());
  }
}

describe('fingerprintModel against the NumPy fixture', () => {
  it('the committed shards are what models.ts builds', async () => {
    for (const [name, bytes] of fixtureShards()) expect(Buffer.from(await readFile(join(modelDir, name))).equals(Buffer.from(bytes))).toBe(true);
  });

  it('threads = 1: equals the reference exactly (norms, samples, hashes, divergence samples)', async () => {
    expectMatchesFixture(await fingerprintModel(modelDir, { salts: [extraSalt], threads: 1 }));
  });

  it('threads = 2 and a tiny read chunk (many leaves and carries) give the same result', async () => {
    const one = await fingerprintModel(modelDir, { salts: [extraSalt], threads: 1 });
    const two = await fingerprintModel(modelDir, { salts: [extraSalt], threads: 2 });
    expectMatchesFixture(two);
    expect(two).toEqual(one);
    for (const threads of [1, 2]) expectMatchesFixture(await fingerprintModel(modelDir, { salts: [extraSalt], threads, readChunkBytes: 2048 }));
  });

  it('fingerprintJson equals Python json.dumps byte for byte', async () => {
    const fp = await fingerprintModel(modelDir, { threads: 1 });
    expect(fingerprintJson(fp.fingerprint)).toBe(expected.fingerprint_json);
  });

  it('knownSha256 skips hashing those files but gives the same weights hash', async () => {
    const [first, ...rest] = Object.keys(expected.file_sha256);
    const partial = { [first as string]: expected.file_sha256[first as string] as string };
    for (const known of [partial, expected.file_sha256]) {
      for (const threads of [1, 2]) {
        const fp = await fingerprintModel(modelDir, { salts: [extraSalt], threads, knownSha256: known, readChunkBytes: 4096 });
        expectMatchesFixture(fp);
      }
    }
    expect(rest.length).toBeGreaterThan(0);
  });

  it('reports progress up to the total tensor bytes', async () => {
    const seen: [number, number][] = [];
    const fp = await fingerprintModel(modelDir, { threads: 1, readChunkBytes: 4096, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toEqual([fp.bytes, fp.bytes]);
  });

  it('sampleModelWeights equals the samples of fingerprintModel for that salt', async () => {
    const s = await sampleModelWeights(modelDir, extraSalt);
    expect(s.salt).toBe(extraSalt);
    expect(s.keys).toEqual(expected.fingerprint.layer_keys);
    expect(Array.from(s.values)).toEqual((expected.samples[extraSalt] as number[][]).flat());
    const corpus = await sampleModelWeights(modelDir, DIVERGENCE_CORPUS_SALT);
    expect(Array.from(corpus.values)).toEqual((expected.samples[DIVERGENCE_CORPUS_SALT] as number[][]).flat());
    expect(corpus.values.length).toBe(s.keys.length * DIVERGENCE_SAMPLES);
  });

  it('works in workers when run under plain `node --import tsx`', async () => {
    const script = join(tmp, 'run-fingerprint.mts');
    await writeFile(
      script,
      `import { fingerprintModel } from ${JSON.stringify(join(here, 'fingerprint.ts'))};\n` +
        `const fp = await fingerprintModel(${JSON.stringify(modelDir)}, { threads: 2 });\n` +
        'console.log(fp.weightsHash, fp.fingerprint.norm_vector.join(","));\n',
    );
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot });
    expect(stdout.trim()).toBe(`${expected.weights_hash} ${expected.fingerprint.norm_vector.join(',')}`);
  });
});

describe('fingerprintModel failures', () => {
  async function modelWith(name: string, files: Record<string, Uint8Array>): Promise<string> {
    const dir = join(tmp, name);
    await mkdir(dir, { recursive: true });
    for (const [f, bytes] of Object.entries(files)) await writeFile(join(dir, f), bytes);
    return dir;
  }

  async function codeOf(p: Promise<unknown>): Promise<string> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FingerprintError);
    return (err as FingerprintError).code;
  }

  it('no shards', async () => {
    const dir = await modelWith('empty', { 'config.json': new TextEncoder().encode('{}') });
    expect(await codeOf(fingerprintModel(dir))).toBe('no_shards');
    expect(await codeOf(fingerprintModel(join(tmp, 'missing-dir')))).toBe('io');
  });

  it('a corrupt header is a header error naming the shard', async () => {
    const good = encodeSafetensors([{ name: 'w', dtype: 'BF16', shape: [4], data: new Uint8Array(8) }]);
    const overlapping = encodeSafetensorsRaw({ w: { dtype: 'BF16', shape: [4], data_offsets: [0, 8] }, v: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] } }, new Uint8Array(8));
    const dir = await modelWith('corrupt', { 'a.safetensors': good, 'b.safetensors': overlapping });
    for (const threads of [1, 2]) {
      const err = await fingerprintModel(dir, { threads }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FingerprintError);
      expect((err as FingerprintError).code).toBe('header');
      expect((err as FingerprintError).message).toContain('b.safetensors');
    }
    const huge = await modelWith('huge-header', { 'model.safetensors': encodeSafetensorsRaw('{}', new Uint8Array(0), 10n ** 12n) });
    expect(await codeOf(fingerprintModel(huge))).toBe('header');
    expect(await codeOf(fingerprintModel(huge, { maxHeaderBytes: 1_000 }))).toBe('header');
    expect(await codeOf(sampleModelWeights(dir, 'x'))).toBe('header');
  });

  it('a non-finite norm names the tensor', async () => {
    const inf = new Uint8Array(Uint16Array.from([0x3f80, 0x7f80, 0, 0]).buffer);
    const dir = await modelWith('inf', { 'model.safetensors': encodeSafetensors([{ name: 'bad.weight', dtype: 'BF16', shape: [4], data: inf }]) });
    const err = await fingerprintModel(dir, { threads: 1 }).catch((e: unknown) => e);
    expect((err as FingerprintError).code).toBe('non_finite');
    expect((err as FingerprintError).message).toContain('bad.weight');
  });

  it('abort stops the pass with an aborted error (main thread and workers)', async () => {
    const big = join(tmp, 'abortable');
    await cp(modelDir, big, { recursive: true });
    for (const threads of [1, 2]) {
      const controller = new AbortController();
      let doneAtAbort = -1;
      let total = 0;
      const p = fingerprintModel(big, {
        threads,
        readChunkBytes: 2048,
        signal: controller.signal,
        onProgress: (done, t) => {
          total = t;
          if (doneAtAbort < 0) {
            doneAtAbort = done;
            controller.abort();
          }
        },
      });
      expect(await codeOf(p)).toBe('aborted');
      expect(doneAtAbort).toBeGreaterThan(0);
      expect(doneAtAbort).toBeLessThan(total);
    }
    const already = AbortSignal.abort();
    expect(await codeOf(fingerprintModel(big, { signal: already }))).toBe('aborted');
    expect(await codeOf(sampleModelWeights(big, 'x', { signal: already }))).toBe('aborted');
  });

  it('skips non-float tensors and lets the later shard win', async () => {
    const f32 = (xs: number[]): Uint8Array => new Uint8Array(Float32Array.from(xs).buffer);
    const dir = await modelWith('dups', {
      'a.safetensors': encodeSafetensors([
        { name: 'w', dtype: 'F32', shape: [2], data: f32([3, 4]) },
        { name: 'q', dtype: 'I8', shape: [3], data: new Uint8Array(3) },
      ]),
      'b.safetensors': encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: f32([2]) }]),
    });
    const fp = await fingerprintModel(dir, { threads: 1 });
    expect(fp.fingerprint.layer_keys).toEqual(['w']);
    expect(fp.fingerprint.norm_vector).toEqual([2]);
    expect(fingerprintJson(fp.fingerprint)).toContain('"norm_vector": [2.0]');
    // The weights hash covers every shard's bytes, skipped tensors included, names irrelevant.
    const perFile = await Promise.all(['a.safetensors', 'b.safetensors'].map(async (f) => createHash('sha256').update(await readFile(join(dir, f))).digest('hex')));
    expect(fp.fileSha256).toEqual({ 'a.safetensors': perFile[0], 'b.safetensors': perFile[1] });
    expect(fp.weightsHash).toBe(createHash('sha256').update([...perFile].sort().join('\n')).digest('hex'));
  });
});
