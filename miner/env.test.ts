import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chainHeaders,
  COMMON_FLAGS,
  defaultDotenvFiles,
  loadDotenvFiles,
  PACKAGE_ROOT,
  parseDotenv,
  parseNetuid,
  requireSetting,
  resolveChainTarget,
  resolveSetting,
  SettingError,
  UsageError,
} from './env.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'albedo-env-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(tmp, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

describe('parseDotenv', () => {
  it('reads KEY=VALUE lines, export prefixes, comments and blank lines', () => {
    const { values, badLines } = parseDotenv(['# a comment', '', 'A=1', 'export B=two', '  export   C = three  ', '   # indented comment', 'D='].join('\n'));
    expect(Object.fromEntries(values)).toEqual({ A: '1', B: 'two', C: 'three', D: '' });
    expect(badLines).toEqual([]);
  });

  it('strips matching single or double quotes and keeps what is inside verbatim', () => {
    const { values } = parseDotenv([`S='a # not a comment'`, `D="b # not either"`, `E="with \\"escaped\\" quotes"`, `N="line\\nbreak"`, `L='no \\n escapes'`, `T="x" # trailing comment`, `M='it''s'`].join('\n'));
    expect(values.get('S')).toBe('a # not a comment');
    expect(values.get('D')).toBe('b # not either');
    expect(values.get('E')).toBe('with "escaped" quotes');
    expect(values.get('N')).toBe('line\nbreak');
    expect(values.get('L')).toBe('no \\n escapes');
    expect(values.get('T')).toBe('x');
    expect(values.has('M')).toBe(false); // text after the closing quote that is not a comment
  });

  it('drops an inline " # comment" from unquoted values but keeps a # inside a word', () => {
    const { values } = parseDotenv('A=value # comment\nB=abc#def\nC=ws://h:1/#frag');
    expect(values.get('A')).toBe('value');
    expect(values.get('B')).toBe('abc#def');
    expect(values.get('C')).toBe('ws://h:1/#frag');
  });

  it('handles CRLF and a BOM, and the last duplicate in one file wins', () => {
    const { values } = parseDotenv('\uFEFFA=1\r\nB=2\r\nA=3\r\n');
    expect(Object.fromEntries(values)).toEqual({ A: '3', B: '2' });
  });

  it('reports unparseable lines by number only', () => {
    const { values, badLines } = parseDotenv(['OK=1', 'no equals sign here', '1BAD=x', 'BAD-KEY=x', 'Q="unterminated', 'secret value without key'].join('\n'));
    expect(Object.fromEntries(values)).toEqual({ OK: '1' });
    expect(badLines).toEqual([2, 3, 4, 5, 6]);
  });
});

describe('loadDotenvFiles', () => {
  it('fills only unset variables: the process environment wins, then the first file, then the second', () => {
    const first = file('root/.env', 'A=from-root\nB=from-root\nEMPTY_IN_ENV=from-root\n');
    const second = file('cwd/.env', 'A=from-cwd\nB=from-cwd\nC=from-cwd\n');
    const env: NodeJS.ProcessEnv = { B: 'from-process', EMPTY_IN_ENV: '' };
    const r = loadDotenvFiles([first, second], env);
    expect(env).toEqual({ A: 'from-root', B: 'from-process', C: 'from-cwd', EMPTY_IN_ENV: '' });
    expect(r.loaded).toEqual([first, second]);
    expect(r.applied.sort()).toEqual(['A', 'C']);
    expect(r.warnings).toEqual([]);
  });

  it('skips missing files silently and warns about unreadable ones and bad lines without echoing values', () => {
    const dir = path.join(tmp, 'dir-env', '.env');
    mkdirSync(dir, { recursive: true });
    const bad = file('bad/.env', 'GOOD=1\nthis-line-holds-a-secret-xyz\n');
    const env: NodeJS.ProcessEnv = {};
    const r = loadDotenvFiles([path.join(tmp, 'missing/.env'), dir, bad], env);
    expect(env).toEqual({ GOOD: '1' });
    expect(r.loaded).toEqual([bad]);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toContain(dir);
    expect(r.warnings[1]).toBe(`${bad}: ignored unparseable line 2`);
    expect(r.warnings.join('\n')).not.toContain('secret-xyz');
  });

  it('never reads example files: only the exact .env names are candidates', () => {
    const files = defaultDotenvFiles(path.join(tmp, 'somewhere'));
    expect(files).toEqual([path.join(PACKAGE_ROOT, '.env'), path.join(tmp, 'somewhere', '.env')]);
    expect(defaultDotenvFiles(PACKAGE_ROOT)).toEqual([path.join(PACKAGE_ROOT, '.env')]);
    expect(JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).name).toBe('albedo');
  });
});

describe('settings', () => {
  it('flag > non-empty environment > default', () => {
    const spec = COMMON_FLAGS.netuid;
    expect(resolveSetting('netuid', spec, '5', { CHAIN_NETUID: '7' })).toEqual({ value: '5', source: '--netuid' });
    expect(resolveSetting('netuid', spec, undefined, { CHAIN_NETUID: ' 7 ' })).toEqual({ value: '7', source: 'CHAIN_NETUID' });
    expect(resolveSetting('netuid', spec, undefined, { CHAIN_NETUID: '' })).toEqual({ value: '97', source: 'default' });
    expect(resolveSetting('network', COMMON_FLAGS.network, undefined, {})).toEqual({ value: 'finney', source: 'default' });
    expect(resolveSetting('coldkey', COMMON_FLAGS.coldkey, undefined, {})).toBeNull();
  });

  it('a missing required setting is a usage error naming the flag and its variable', () => {
    expect(() => requireSetting('hotkey', COMMON_FLAGS.hotkey, undefined, {})).toThrow(new UsageError('--hotkey is required (or set ALBEDO_HOTKEY)'));
    expect(requireSetting('hotkey', COMMON_FLAGS.hotkey, undefined, { ALBEDO_HOTKEY: 'miner_1' }).value).toBe('miner_1');
  });

  it('netuid must be 0..65535 and the error names where the value came from', () => {
    expect(parseNetuid({ value: '0', source: '--netuid' })).toBe(0);
    expect(parseNetuid({ value: '65535', source: '--netuid' })).toBe(65535);
    expect(() => parseNetuid({ value: '65536', source: '--netuid' })).toThrow(SettingError);
    expect(() => parseNetuid({ value: 'abc', source: 'CHAIN_NETUID' })).toThrow('CHAIN_NETUID must be an integer 0..65535 (got "abc")');
    expect(() => parseNetuid({ value: '-1', source: '--netuid' })).toThrow('--netuid must be');
  });

  it('the chain token becomes a bearer header, and nothing when unset', () => {
    expect(chainHeaders({ ALBEDO_CHAIN_TOKEN: 'tok' })).toEqual({ Authorization: 'Bearer tok' });
    expect(chainHeaders({ ALBEDO_CHAIN_TOKEN: '  ' })).toBeUndefined();
    expect(chainHeaders({})).toBeUndefined();
  });

  it('resolves the chain target without network access and prints URLs redacted', async () => {
    expect(await resolveChainTarget({}, {})).toEqual({ netuid: 97, network: 'finney', label: 'finney' });
    expect(await resolveChainTarget({ netuid: '3' }, { CHAIN_NETWORK: 'local' })).toEqual({ netuid: 3, network: 'local', label: 'local' });
    const t = await resolveChainTarget({ network: 'ws://user:pw@127.0.0.1:9/x?token=s3cret' }, {});
    expect(t.label).not.toContain('pw');
    expect(t.label).not.toContain('s3cret');
    await expect(resolveChainTarget({ network: 'http://example.com' }, {})).rejects.toThrow('ws:// or wss://');
    await expect(resolveChainTarget({ network: 'mainnet' }, {})).rejects.toThrow('CHAIN_NETWORK must be one of');
    await expect(resolveChainTarget({ network: 'constructor' }, {})).rejects.toThrow('CHAIN_NETWORK must be one of');
  });
});

// The real CLI as a child process: `.env` in the working directory, precedence against the process env.
const BIN = path.join(PACKAGE_ROOT, 'bin', 'albedo.mjs');
const DIGEST = 'a'.repeat(40);

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(CHAIN_|ALBEDO_|BT_PW_)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function runCli(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.concurrent('.env through the real CLI', () => {
  const commit = ['commit', '--repo', 'me/albedo-qwen3.6-35b-x', '--digest', DIGEST, '--yes', '--hotkey', 'miner_1'];

  it('./.env fills unset variables (export prefix, quotes) and is used by the command', async () => {
    const cwd = path.join(tmp, 'cli-a');
    file('cli-a/.env', `export ALBEDO_COLDKEY='miners'\nCHAIN_NETUID="from-dotenv" # comment\n`);
    const r = await runCli(commit, { cwd });
    // The coldkey came from .env (no usage error); the netuid from .env is refused before any network use.
    expect(r.stderr).toBe('error: CHAIN_NETUID must be an integer 0..65535 (got "from-dotenv")\n');
    expect(r.code).toBe(1);
  });

  it('the process environment wins over ./.env', async () => {
    const cwd = path.join(tmp, 'cli-b');
    file('cli-b/.env', 'ALBEDO_COLDKEY=miners\nCHAIN_NETUID=from-dotenv\n');
    const r = await runCli(commit, { cwd, env: { CHAIN_NETUID: 'from-process' } });
    expect(r.stderr).toBe('error: CHAIN_NETUID must be an integer 0..65535 (got "from-process")\n');
    expect(r.code).toBe(1);
  });

  it('example files are not loaded', async () => {
    const cwd = path.join(tmp, 'cli-c');
    file('cli-c/.env.example', 'ALBEDO_COLDKEY=miners\n');
    const r = await runCli(commit, { cwd });
    expect(r.stderr).toContain('error: --coldkey is required (or set ALBEDO_COLDKEY)');
    expect(r.code).toBe(2);
  });

  it('unparseable lines are reported by number, never by content', async () => {
    const cwd = path.join(tmp, 'cli-d');
    file('cli-d/.env', 'this is my secret phrase\n');
    const r = await runCli(['--help'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: ${path.join(cwd, '.env')}: ignored unparseable line 1\n`);
  });
});
