/**
 * `albedo eval-set` end to end: the real binary (bin/albedo.mjs) against the Python reference sampler
 * (tests/fixtures/pyrandom/gen_samplers.py) — via its committed fixtures, and live when python3 is on
 * the PATH.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.ts';
import { PACKAGE_ROOT } from './env.ts';

const BIN = path.join(PACKAGE_ROOT, 'bin/albedo.mjs');
const GEN = path.join(PACKAGE_ROOT, 'tests/fixtures/pyrandom/gen_samplers.py');

interface Case {
  seed: string;
  sample_count: number;
  max_turns?: number;
  profile?: string;
  ids?: string[];
  ids_count?: number;
  ids_head?: string[];
  ids_sha256?: string;
  error?: string;
}
interface Fixtures {
  v1: { name: string; manifest: unknown; cases: Case[] }[];
  v2: { name: string; manifest: unknown; cases: Case[] }[];
}
const fixtures = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'tests/fixtures/pyrandom/samplers.json'), 'utf8')) as Fixtures;

const dir = mkdtempSync(path.join(tmpdir(), 'albedo-eval-set-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeManifest(name: string, manifest: unknown): { file: string; sha256: string } {
  const file = path.join(dir, `${name}.json`);
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(file, bytes);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'eval-set', ...args], { cwd: dir, env: { ...process.env, ALBEDO_DEBUG: '0' }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function expectIds(ids: string[], expected: Case): void {
  if (expected.ids) return void expect(ids).toEqual(expected.ids);
  expect(ids).toHaveLength(expected.ids_count!);
  expect(ids.slice(0, expected.ids_head!.length)).toEqual(expected.ids_head);
  expect(createHash('sha256').update(ids.join('\n')).digest('hex')).toBe(expected.ids_sha256);
}

const hasPython = (() => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('albedo eval-set (real binary)', () => {
  const v1 = fixtures.v1.find((e) => e.name === 'several-shards')!;
  const v1Manifest = writeManifest('v1', v1.manifest);
  const v2 = fixtures.v2.find((e) => e.name === 'four-sources')!;
  const v2Manifest = writeManifest('v2', v2.manifest);

  it('prints the Python reference ids, one per line (v1, default count and turns) and as JSON (v2)', async () => {
    const c1 = v1.cases.find((c) => c.sample_count === 128 && c.max_turns === 10 && c.seed.startsWith('0x5f'))!;
    const c2 = v2.cases.find((c) => c.sample_count === 64 && c.profile === 'pre-2026-08-21' && c.error === undefined)!;
    const c3 = v2.cases.find((c) => c.sample_count === 10 && c.profile === '2026-08-21')!;
    const [lines, json, defaults] = await Promise.all([
      run(['--manifest', v1Manifest.file, '--seed', c1.seed, `--manifest-sha256=sha256:${v1Manifest.sha256}`]),
      run(['--manifest', v2Manifest.file, '--seed', c2.seed, '--algo', 'multi-source-manifest-sample-v1', '--count', '64', '--profile', 'pre-2026-08-21', '--json']),
      run(['--manifest', v2Manifest.file, '--seed', c3.seed, '--algo', 'multi-source-manifest-sample-v1', '--count', '10']),
    ]);
    expect(lines.code, lines.stderr).toBe(0);
    expect(lines.stderr).toContain(`manifest sha256: ${v1Manifest.sha256}`);
    expectIds(lines.stdout.trimEnd().split('\n'), c1);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout.trimEnd().split('\n')).toHaveLength(1);
    expectIds(JSON.parse(json.stdout) as string[], c2);
    expect(defaults.code, defaults.stderr).toBe(0);
    expectIds(defaults.stdout.trimEnd().split('\n'), c3);
  });

  it.skipIf(!hasPython)('matches gen_samplers.py run live on the same file (non-ASCII seed, 5000 ids)', async () => {
    const seed = '日本語-🦀';
    const args = [v1Manifest.file, seed, '--count', '5000', '--max-turns', '3'];
    const [ours, python] = await Promise.all([
      run(['--manifest', v1Manifest.file, '--seed', seed, '--count', '5000', '--max-turns', '3']),
      new Promise<string>((resolve, reject) =>
        execFile('python3', [GEN, 'ids', ...args], { maxBuffer: 64 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
      ),
    ]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout.trimEnd().split('\n')).toHaveLength(5000);
    expect(ours.stdout).toBe(python);
  });

  it('pin mismatch: exit 1 and the spec message (real binary)', async () => {
    const pin = await run(['--manifest', v1Manifest.file, '--seed', '0xabc', '--manifest-sha256', '0'.repeat(64)]);
    expect(pin).toMatchObject({ code: 1, stdout: '' });
    expect(pin.stderr.trim()).toBe(`error: dataset manifest hash mismatch: expected ${'0'.repeat(64)}, got ${v1Manifest.sha256}`);
  });

  it('invalid manifests exit 1 with the sampler message; flag misuse exits 2 (in-process)', async () => {
    const cli = async (args: string[]) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (d) => (out += d));
      stderr.on('data', (d) => (err += d));
      const code = await runCli(['eval-set', ...args], { env: {}, stdin: Object.assign(new PassThrough(), { isTTY: false }), stdout, stderr });
      return { code, stdout: out, stderr: err };
    };
    const bad = writeManifest('bad', { shards: [{ name: 'data/train-0.parquet', rows: 2 }], total_rows: 3 });
    const invalid = await cli(['--manifest', bad.file, '--seed', '0xabc']);
    expect(invalid).toMatchObject({ code: 1, stdout: '' });
    expect(invalid.stderr).toContain('error: manifest total_rows does not match shard rows');
    const algo = await cli(['--manifest', v1Manifest.file, '--seed', '0xabc', '--algo', 'random-v9']);
    expect(algo.code).toBe(2);
    expect(algo.stderr).toContain('error: unknown sampling algorithm "random-v9"');
    expect((await cli(['--manifest', v2Manifest.file, '--seed', '0xabc', '--algo', 'multi-source-manifest-sample-v1', '--max-turns', '3'])).code).toBe(2);
    expect((await cli(['--manifest', v1Manifest.file, '--seed', '0xabc', '--profile', '2026-08-21'])).code).toBe(2);
    expect((await cli(['--manifest', v1Manifest.file, '--seed', '0xabc', '--count', '-1'])).code).toBe(2);
    const count = await cli(['--manifest', v1Manifest.file, '--seed', '0xabc', '--count=1.5']);
    expect(count).toMatchObject({ code: 1, stdout: '' });
    expect(count.stderr).toContain('--count must be an integer');
    expect((await cli(['--manifest', v1Manifest.file, '--seed', ''])).code).toBe(2);
    const empty = await cli(['--manifest', v1Manifest.file, '--seed', '0xabc', '--count', '0', '--json']);
    expect(empty).toMatchObject({ code: 0, stdout: '[]\n' });
  });
});
