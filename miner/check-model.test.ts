import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyntheticModel } from '../validation/synthetic-model.ts';
import { encodeSafetensorsRaw } from '../validation/synthetic-model.ts';
import { runCli } from './cli.ts';
import { PACKAGE_ROOT } from './env.ts';

const REPO = 'me/albedo-qwen3.6-35b-x';

function memoryIo(env: NodeJS.ProcessEnv = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString() ?? '';
  return { io: { env, stdin: Object.assign(new PassThrough(), { isTTY: false }), stdout, stderr }, out: () => text(stdout), err: () => text(stderr) };
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'albedo-check-model-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('albedo check-model --path (issue #5 item 7)', () => {
  it('a valid model: one [PASS] line per check, VALID, exit 0, and the dedup note on stderr', async () => {
    const model = await createSyntheticModel(join(root, 'ok'));
    const m = memoryIo();
    expect(await runCli(['check-model', '--path', model.dir, '--repo', REPO], m.io)).toBe(0);
    expect(m.out().split('\n')).toEqual([
      '[PASS] repo_name',
      '[PASS] list_files',
      '[PASS] file_manifest',
      '[PASS] safetensors_preflight',
      '[PASS] architecture',
      '[PASS] safetensors_index',
      'VALID',
      '',
    ]);
    expect(m.err()).toMatch(/only on the validator/);
  });

  it('without --repo the repo-name rule is not run; the alias check-hippius is the same command', async () => {
    const model = await createSyntheticModel(join(root, 'alias'));
    const m = memoryIo();
    expect(await runCli(['check-hippius', '--path', model.dir], m.io)).toBe(0);
    expect(m.out()).not.toContain('repo_name');
  });

  it('a bad repo name and an F32 shard: [FAIL] with the fault code, later checks skipped, INVALID, exit 1', async () => {
    const model = await createSyntheticModel(join(root, 'f32'), { dtype: 'F32' });
    const m = memoryIo();
    expect(await runCli(['check-model', '--path', model.dir], m.io)).toBe(1);
    const out = m.out();
    expect(out).toMatch(/\[FAIL\] safetensors_preflight — weight_dtype: model weights must be 16-bit \(F16\/BF16\); shard model-00001-of-00002\.safetensors has dtype\(s\): \['F32'\]/);
    expect(out).toContain('[SKIP] architecture — not run: safetensors_preflight failed');
    expect(out.trimEnd().endsWith('INVALID')).toBe(true);

    const named = memoryIo();
    expect(await runCli(['check-model', '--path', model.dir, '--repo', 'me/other-model'], named.io)).toBe(1);
    expect(named.out()).toMatch(/\[FAIL\] repo_name — repo_name: repo name me\/other-model does not match/);
  });

  it('--json: every check with name, status and fault code, and the fault', async () => {
    const model = await createSyntheticModel(join(root, 'json'), { extraFiles: { 'modeling.py': 'import os\n' } });
    const m = memoryIo();
    expect(await runCli(['check-model', '--path', model.dir, '--json'], m.io)).toBe(1);
    const report = JSON.parse(m.out());
    expect(report.valid).toBe(false);
    expect(report.path).toBe(model.dir);
    expect(report.checks.map((c: { name: string; status: string; fault_code: string | null }) => [c.name, c.status, c.fault_code])).toEqual([
      ['list_files', 'passed', null],
      ['file_manifest', 'failed', 'file_manifest'],
      ['safetensors_preflight', 'skipped', null],
      ['architecture', 'skipped', null],
      ['safetensors_index', 'skipped', null],
    ]);
    expect(report.fault).toEqual({ fault_class: 'MINER_FAULT', fault_code: 'file_manifest', message: "forbidden present: ['modeling.py']" });
  });

  it('hostile files get a clean fault, never a stack trace: a multi-GB declared header, binary garbage, an invalid config.json', async () => {
    const huge = await createSyntheticModel(join(root, 'huge'), { shards: 1 });
    await writeFile(join(huge.dir, 'model.safetensors'), encodeSafetensorsRaw('{}', new Uint8Array(0), 2n ** 62n));
    const garbage = await createSyntheticModel(join(root, 'garbage'), { shards: 1 });
    await writeFile(join(garbage.dir, 'model.safetensors'), new Uint8Array(64).fill(0xff));
    const config = await createSyntheticModel(join(root, 'config'), { extraFiles: { 'config.json': '{"architectures": [' } });
    for (const [dir, code] of [
      [huge.dir, 'safetensors_header'],
      [garbage.dir, 'safetensors_header'],
      [config.dir, 'architecture'],
    ] as const) {
      const m = memoryIo();
      expect(await runCli(['check-model', '--path', dir, '--json'], m.io)).toBe(1);
      expect(JSON.parse(m.out()).fault.fault_code).toBe(code);
      expect(m.err()).not.toMatch(/\n\s+at /);
    }
  });

  it('usage: --path and --digest are exclusive, --digest needs --repo, a missing directory is a clean error', async () => {
    const a = memoryIo();
    expect(await runCli(['check-model'], a.io)).toBe(2);
    expect(a.err()).toMatch(/^error: give --path <dir>, or --repo <ns\/name> with --digest <pin>/);
    const b = memoryIo();
    expect(await runCli(['check-model', '--digest', `sha256:${'a'.repeat(64)}`], b.io)).toBe(2);
    const c = memoryIo();
    expect(await runCli(['check-model', '--path', join(root, 'nope')], c.io)).toBe(1);
    expect(c.err()).toBe(`error: --path ${join(root, 'nope')} is not a directory\n`);
  });

  it('v2 profile: the chat template and genesis files are pinned byte for byte', async () => {
    const model = await createSyntheticModel(join(root, 'v2'), { extraFiles: { 'generation_config.json': '{}\n' }, dropFile: ['README.md', 'merges.txt', 'vocab.json', 'special_tokens_map.json', 'added_tokens.json', 'configuration.json'] });
    const sha = async (f: string) => createHash('sha256').update(await readFile(join(model.dir, f))).digest('hex');
    const hashes: Record<string, string> = {};
    for (const f of ['config.json', 'generation_config.json', 'tokenizer_config.json']) hashes[f] = await sha(f);
    const env = { ALBEDO_ALLOWLIST_PROFILE: 'v2', ALBEDO_CHAT_TEMPLATE_SHA256: await sha('chat_template.jinja'), ALBEDO_GENESIS_FILE_HASHES: JSON.stringify(hashes) };
    const ok = memoryIo(env);
    const code = await runCli(['check-model', '--path', model.dir, '--json'], ok.io);
    const report = JSON.parse(ok.out());
    expect(report.checks.find((c: { name: string }) => c.name === 'genesis_pins')?.status, JSON.stringify(report.fault)).toBe('passed');
    expect(code).toBe(0);

    const template = await readFile(join(model.dir, 'chat_template.jinja'));
    await writeFile(join(model.dir, 'chat_template.jinja'), `${template}{# tampered #}`);
    const tpl = memoryIo(env);
    expect(await runCli(['check-model', '--path', model.dir, '--json'], tpl.io)).toBe(1);
    expect(JSON.parse(tpl.out()).fault).toMatchObject({ fault_code: 'chat_template_hash', message: expect.stringMatching(/^chat_template\.jinja sha256 [0-9a-f]{64} != /) });
    await writeFile(join(model.dir, 'chat_template.jinja'), template);

    await writeFile(join(model.dir, 'config.json'), `${(await readFile(join(model.dir, 'config.json'), 'utf8')).trimEnd()} \n`);
    const bad = memoryIo(env);
    expect(await runCli(['check-model', '--path', model.dir, '--json'], bad.io)).toBe(1);
    expect(JSON.parse(bad.out()).fault).toMatchObject({ fault_code: 'metadata_hash', message: expect.stringMatching(/^config\.json sha256 [0-9a-f]{64} != [0-9a-f]{64} \(does not match genesis the genesis model\)$/) });
  });
});

describe('albedo fingerprint (issue #5 item 7)', () => {
  const fixture = join(PACKAGE_ROOT, 'tests/fixtures/fingerprint');

  it('--json prints the exact validator fingerprint JSON (byte for byte what NumPy/json.dumps produce)', async () => {
    const expected = JSON.parse(await readFile(join(fixture, 'expected.json'), 'utf8')) as { fingerprint_json: string; weights_hash: string };
    const m = memoryIo();
    expect(await runCli(['fingerprint', join(fixture, 'model'), '--json'], m.io)).toBe(0);
    expect(m.out()).toBe(`${expected.fingerprint_json}\n`);

    const human = memoryIo();
    expect(await runCli(['fingerprint', join(fixture, 'model')], human.io)).toBe(0);
    expect(human.out()).toContain(`weights_hash  ${expected.weights_hash}`);
  });

  it('hostile or missing input: a clean error and exit 1, never a stack trace', async () => {
    const bad = join(root, 'fp-bad');
    await createSyntheticModel(bad, { shards: 1 });
    await writeFile(join(bad, 'model.safetensors'), encodeSafetensorsRaw('{"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 99]}}'));
    for (const [dir, re] of [
      [bad, /^error: .*model\.safetensors/],
      [join(root, 'fp-missing'), /^error: .*fp-missing is not a directory/],
    ] as const) {
      const m = memoryIo();
      expect(await runCli(['fingerprint', dir], m.io)).toBe(1);
      expect(m.err()).toMatch(re);
      expect(m.err()).not.toMatch(/\n\s+at /);
    }
  });
});

describe('the albedo bin', () => {
  it('runs check-model as a child process (npx albedo after npm ci)', async () => {
    const model = await createSyntheticModel(join(root, 'bin'));
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin/albedo.mjs'), 'check-model', '--path', model.dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(JSON.parse(out).valid).toBe(true);
  });
});
