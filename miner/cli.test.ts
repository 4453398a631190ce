import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REVEAL_WAIT_MS, MAX_RAW_COMMITMENT_BYTES, MinerOpError } from '../chain/miner-ops.ts';
import { ChainConfigError, NETWORK_PRESETS } from '../chain/provider.ts';
import type { Subtensor } from '../chain/subtensor.ts';
import { BT_PW_ENV_PREFIX as WALLET_BT_PW_PREFIX, DEFAULT_WALLET_PATH as WALLET_DEFAULT_PATH, WalletError, WALLET_PATH_ENV as WALLET_ENV } from '../chain/wallet.ts';
import { COMMANDS, commandHelp, describeFailure, parseInvocation, rootHelp, runCli, scrubSecrets } from './cli.ts';
import { formatCommitLine, formatCommitList } from './commands/check-commit.ts';
import { MAX_RAW_BYTES, REVEAL_WAIT_MS } from './commands/commit.ts';
import { BT_PW_ENV_PREFIX, DEFAULT_WALLET_PATH, NETWORK_PRESET_NAMES, PACKAGE_ROOT, UsageError, WALLET_PATH_ENV } from './env.ts';
import { confirm, InterruptedError, isYes, NonInteractiveError } from './prompt.ts';

const DIGEST = 'a'.repeat(40);
const REPO = 'me/albedo-qwen3.6-35b-x';
const WALLETS = path.join(PACKAGE_ROOT, 'tests/fixtures/chain/wallets/plaintext');
const MINER_1 = '5FEc1TfRxmvKbMwQ8UpbszLa2AdXzTbcjK1ACXQBrhgGA9EF';

// ── parsing and help (pure) ───────────────────────────────────────────────────────────────────

describe('parseInvocation', () => {
  it('no command, --help, -h and "help" print the root help', () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) expect(parseInvocation(argv)).toEqual({ kind: 'help', text: rootHelp() });
  });

  it('<cmd> --help and help <cmd> print the command help, even next to other flags or mistakes', () => {
    for (const cmd of COMMANDS) {
      const help = { kind: 'help', text: commandHelp(cmd) };
      expect(parseInvocation([cmd.name, '--help'])).toEqual(help);
      expect(parseInvocation([cmd.name, '-h'])).toEqual(help);
      expect(parseInvocation(['help', cmd.name])).toEqual(help);
      expect(parseInvocation([cmd.name, '--netuid', '3', '--help'])).toEqual(help);
      expect(parseInvocation([cmd.name, '--bogus', '--help'])).toEqual(help);
    }
  });

  it('usage errors: unknown command, unknown flag, positional, missing value, flag before the command', () => {
    const usage = (argv: string[]) => {
      const p = parseInvocation(argv);
      if (p.kind !== 'usage') throw new Error(`expected a usage error for ${argv.join(' ')}, got ${p.kind}`);
      return p;
    };
    expect(usage(['bogus'])).toMatchObject({ message: 'unknown command "bogus"', usage: 'usage: albedo <command> [flags]' });
    expect(usage(['help', 'bogus']).message).toBe('unknown command "bogus"');
    expect(usage(['commit', '--bogus'])).toMatchObject({ message: 'unknown flag --bogus', usage: expect.stringContaining('usage: albedo commit --repo') });
    expect(usage(['commit', '-x']).message).toBe('unknown flag -x');
    expect(usage(['register', 'extra']).message).toBe('unexpected argument "extra"');
    expect(usage(['commit', '--repo']).message).toContain("'--repo <value>' argument missing");
    expect(usage(['commit', '--repo', '--digest', DIGEST]).message).toContain('--repo');
    expect(usage(['commit', '--yes=1']).message).toContain('--yes');
    expect(usage(['--network', 'local', 'register']).message).toBe('unknown flag --network (flags go after the command)');
  });

  it('parses declared flags, "--no-wait" included, and refuses reads of undeclared ones', () => {
    const p = parseInvocation(['commit', '--repo', REPO, '--digest=' + DIGEST, '--no-wait', '--raw', '--netuid', '3']);
    if (p.kind !== 'run') throw new Error('expected run');
    expect(p.command.name).toBe('commit');
    expect(p.flags.required('repo')).toBe(REPO);
    expect(p.flags.string('digest')).toBe(DIGEST);
    expect(p.flags.boolean('no-wait')).toBe(true);
    expect(p.flags.boolean('yes')).toBe(false);
    expect(p.flags.string('coldkey')).toBeUndefined();
    expect(() => p.flags.required('coldkey')).toThrow(new UsageError('--coldkey is required'));
    expect(() => p.flags.string('nope')).toThrow('undeclared');
    expect(() => p.flags.string('yes')).toThrow('undeclared');
  });

  it('every declared flag is accepted by the parser and documented with its env variable and default', () => {
    for (const cmd of COMMANDS) {
      const help = commandHelp(cmd);
      const argv = [cmd.name];
      for (const [name, spec] of Object.entries(cmd.flags)) {
        argv.push(`--${name}`);
        if (spec.type === 'string') argv.push('v');
        const left = spec.type === 'string' ? `--${name} ${spec.placeholder}` : `--${name}`;
        const line = help.split('\n').find((l) => l.startsWith(`  ${left}  `));
        expect(line, `help of ${cmd.name} documents --${name}`).toBeDefined();
        expect(line).toContain(spec.description);
        if (spec.env) expect(line).toContain(spec.env);
        if (spec.default !== undefined) expect(line).toContain(`default ${spec.default}`);
        if (spec.required) expect(line).toContain('required');
      }
      for (let i = 0; i < (cmd.positionals?.[0] ?? 0); i++) argv.push(`arg${i}`);
      expect(parseInvocation(argv).kind).toBe('run');
      for (const [name] of cmd.env ?? []) expect(help).toContain(name);
      expect(rootHelp()).toContain(`  ${cmd.name}`);
      expect(rootHelp()).toContain(cmd.summary);
    }
  });

  it('command names are unique', () => {
    expect(new Set(COMMANDS.map((c) => c.name)).size).toBe(COMMANDS.length);
  });
});

describe('help stays true to the chain code', () => {
  it('constants copied to keep help fast equal their sources', () => {
    expect([...NETWORK_PRESET_NAMES].sort()).toEqual(Object.keys(NETWORK_PRESETS).sort());
    expect(WALLET_PATH_ENV).toBe(WALLET_ENV);
    expect(DEFAULT_WALLET_PATH).toBe(WALLET_DEFAULT_PATH);
    expect(BT_PW_ENV_PREFIX).toBe(WALLET_BT_PW_PREFIX);
    expect(REVEAL_WAIT_MS).toBe(DEFAULT_REVEAL_WAIT_MS);
    expect(MAX_RAW_BYTES).toBe(MAX_RAW_COMMITMENT_BYTES);
  });
});

describe('failures', () => {
  it('map to exit codes and one-line messages', () => {
    expect(describeFailure(new UsageError('--x is required'))).toEqual({ code: 2, message: 'error: --x is required' });
    expect(describeFailure(new InterruptedError())).toEqual({ code: 130, message: 'aborted.' });
    expect(describeFailure(new WalletError('wrong_password', 'wrong password for /w/coldkey'))).toEqual({ code: 1, message: 'error: wrong password for /w/coldkey' });
    expect(describeFailure(new MinerOpError('insufficient_balance', 'insufficient balance: have 1 TAO, need 2 TAO'))).toEqual({ code: 1, message: 'error: insufficient balance: have 1 TAO, need 2 TAO' });
    expect(describeFailure(new ChainConfigError('bad network'))).toEqual({ code: 1, message: 'error: bad network' });
    expect(describeFailure(new NonInteractiveError()).message).toContain('pass --yes');
    expect(describeFailure(new TypeError('boom\n    at stack frame'))).toEqual({ code: 1, message: 'error: boom' });
    expect(describeFailure({ type: 'error', message: 'connect ECONNREFUSED' })).toEqual({ code: 1, message: 'error: connect ECONNREFUSED' });
    expect(describeFailure('plain')).toEqual({ code: 1, message: 'error: plain' });
  });

  it('the chain token is scrubbed from anything printed', () => {
    expect(scrubSecrets('Bearer tok-123456 rejected', { ALBEDO_CHAIN_TOKEN: 'tok-123456' })).toBe('Bearer *** rejected');
    expect(scrubSecrets('nothing', {})).toBe('nothing');
  });
});

describe('check-commit output format', () => {
  it('one line per reveal, a blank line and the count; or the "none" lines', () => {
    const c = { block: 12, hotkey: MINER_1, modelUri: `${REPO}@${DIGEST}` };
    expect(formatCommitLine(c)).toBe(`block=12  hotkey=5FEc1TfRxm…  ${REPO}@${DIGEST}`);
    expect(formatCommitList([c, { ...c, block: 15 }], null)).toEqual([formatCommitLine(c), formatCommitLine({ ...c, block: 15 }), '', '2 commit(s)']);
    expect(formatCommitList([], null)).toEqual(['no v7 commits found']);
    expect(formatCommitList([], MINER_1)).toEqual([`no v7 commits found for hotkey ${MINER_1}`]);
  });
});

// ── the prompt ────────────────────────────────────────────────────────────────────────────────

function ttyInput(): PassThrough & { isTTY: boolean } {
  return Object.assign(new PassThrough(), { isTTY: true });
}

describe('confirm', () => {
  it('accepts y / yes in any case and nothing else', () => {
    for (const a of ['y', 'Y', 'yes', 'YES', ' Yes ']) expect(isYes(a)).toBe(true);
    for (const a of ['', 'n', 'no', 'yess', 'ye', 'y e s', 'ok']) expect(isYes(a)).toBe(false);
  });

  it('reads one answer from a terminal; end of input declines', async () => {
    for (const [answer, expected] of [['y\n', true], ['YES\n', true], ['n\n', false], ['\n', false]] as const) {
      const input = ttyInput();
      const output = new PassThrough();
      const p = confirm(undefined, { input, output });
      input.write(answer);
      expect(await p).toBe(expected);
      expect(output.read()?.toString()).toContain('Proceed? [y/N] ');
    }
    const input = ttyInput();
    const p = confirm(undefined, { input, output: new PassThrough() });
    input.end();
    expect(await p).toBe(false);
  });

  it('refuses a non-interactive stdin', async () => {
    await expect(confirm(undefined, { input: new PassThrough(), output: new PassThrough() })).rejects.toBeInstanceOf(NonInteractiveError);
  });
});

// ── runCli in-process with a fake chain ───────────────────────────────────────────────────────

function memoryIo(env: NodeJS.ProcessEnv, fakeChain: Partial<Subtensor> | Error) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const calls: Array<{ network: string; headers?: Record<string, string> }> = [];
  let closed = 0;
  const io = {
    env,
    stdin: Object.assign(new PassThrough(), { isTTY: false }),
    stdout,
    stderr,
    connect: async (options: { network: string; headers?: Record<string, string> }) => {
      calls.push(options);
      if (fakeChain instanceof Error) throw fakeChain;
      return { close: async () => void closed++, ...fakeChain } as unknown as Subtensor;
    },
  };
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString() ?? '';
  return { io, calls, closed: () => closed, out: () => text(stdout), err: () => text(stderr) };
}

describe('runCli with a fake chain', () => {
  const env = { ALBEDO_WALLET_PATH: WALLETS, ALBEDO_COLDKEY: 'miners', ALBEDO_HOTKEY: 'miner_1', CHAIN_NETWORK: 'ws://127.0.0.1:9/', ALBEDO_CHAIN_TOKEN: 'tok-abcdef' };

  it('commit from an unregistered hotkey: the spec message, no preview, the connection closed, the token sent as a header', async () => {
    const m = memoryIo({ ...env }, { uidOf: async () => null });
    const code = await runCli(['commit', '--repo', REPO, '--digest', DIGEST, '--yes'], m.io);
    expect(code).toBe(1);
    expect(m.err()).toBe(`connecting to ws://127.0.0.1:9/…\nerror: hotkey ${MINER_1} is not registered on netuid 97 (run albedo register)\n`);
    expect(m.out()).toBe('');
    expect(m.closed()).toBe(1);
    expect(m.calls).toEqual([{ network: 'ws://127.0.0.1:9/', headers: { Authorization: 'Bearer tok-abcdef' } }]);
  });

  it('register of a hotkey that has a uid: no coldkey access, no prompt needed', async () => {
    const m = memoryIo({ ...env, ALBEDO_COLDKEY: 'miners' }, { uidOf: async () => 4 });
    expect(await runCli(['register', '--netuid', '12'], m.io)).toBe(0);
    expect(m.out()).toBe('already registered: uid 4\n');
  });

  it('register refuses to prompt on a non-terminal stdin after showing the cost', async () => {
    const m = memoryIo({ ...env }, { uidOf: async () => null, burnCost: async () => 1_500_000_000n, freeBalance: async () => 10_000_000_000n });
    expect(await runCli(['register'], m.io)).toBe(1);
    expect(m.out()).toBe('registration cost: 1.5 TAO (balance: 10 TAO)\n');
    expect(m.err()).toContain('error: stdin is not a terminal');
  });

  it('register with too little balance fails before unlocking the coldkey', async () => {
    const m = memoryIo({ ...env }, { uidOf: async () => null, burnCost: async () => 2_000_000_000n, freeBalance: async () => 1n });
    expect(await runCli(['register', '--yes'], m.io)).toBe(1);
    expect(m.err()).toContain('error: insufficient balance: have 0.000000001 TAO, need 2 TAO');
  });

  it('check-commit lists only valid v7 reveals of registered hotkeys, sorted by block, and pending rounds', async () => {
    const { scaleEncodeString } = await import('../chain/reveal.ts');
    const other = '5DCrsirhNuoNnW5urMbpV2arpvfuVhByrHYY22dQVgpQhKoD';
    const gone = '5HRMfR5ka1TfAMTHEA3r9yvkKLVth3344h3UmZv9UoX4QDmh';
    const rc = (hotkey: string, block: number, payload: string) => ({ hotkey, block, blockHash: '0x', bytes: scaleEncodeString(payload) });
    const fake: Partial<Subtensor> = {
      neurons: async () => [
        { uid: 0, hotkey: MINER_1, registrationBlock: 1 },
        { uid: 1, hotkey: other, registrationBlock: 1 },
      ],
      revealedCommitments: async () => [
        rc(other, 20, `v7|${REPO}|${DIGEST}`),
        rc(MINER_1, 9, `v7|${REPO}|${'b'.repeat(64)}`),
        rc(MINER_1, 30, `v6|${REPO}|${DIGEST}`),
        rc(gone, 5, `v7|${REPO}|${DIGEST}`),
        rc(MINER_1, 31, `v7|${REPO}|main`),
      ],
      api: {} as Subtensor['api'],
    };
    const m = memoryIo({ CHAIN_NETWORK: 'local' }, fake);
    expect(await runCli(['check-commit'], m.io)).toBe(0);
    expect(m.out()).toBe([`block=9  hotkey=5FEc1TfRxm…  ${REPO}@${'b'.repeat(64)}`, `block=20  hotkey=5DCrsirhNu…  ${REPO}@${DIGEST}`, '', '2 commit(s)', ''].join('\n'));
  });

  it('check-commit --hotkey refuses a hotkey name', async () => {
    const m = memoryIo({}, new Error('must not connect'));
    expect(await runCli(['check-commit', '--hotkey', 'miner_1'], m.io)).toBe(1);
    expect(m.err()).toBe('error: --hotkey takes an SS58 address here (not a hotkey name); "miner_1" is not one\n');
    expect(m.calls).toHaveLength(0);
  });

  it('a connection failure names the redacted endpoint, never the credentials', async () => {
    const m = memoryIo({ CHAIN_NETWORK: 'ws://user:hunter2@127.0.0.1:9/' }, Object.assign(new Error('failed ws://user:hunter2@127.0.0.1:9/'), { name: 'Whatever' }));
    expect(await runCli(['check-commit'], m.io)).toBe(1);
    const err = m.err();
    expect(err).toContain('error: cannot connect to ws://redacted@127.0.0.1:9/: failed ws://redacted@127.0.0.1:9/');
    expect(err).not.toContain('hunter2');
  });
});

// ── the real CLI as a child process ───────────────────────────────────────────────────────────

const BIN = path.join(PACKAGE_ROOT, 'bin', 'albedo.mjs');

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(CHAIN_|ALBEDO_|BT_PW_)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  result: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stderrSoFar(): string;
}

function start(args: string[], env: Record<string, string> = {}, stdin: 'ignore' | 'pipe' = 'ignore'): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: PACKAGE_ROOT, env: cleanEnv(env), stdio: [stdin, 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, result, stderrSoFar: () => stderr };
}

const run = (args: string[], env: Record<string, string> = {}) => start(args, env).result;

/** A TCP listener that records connections and the HTTP upgrade request, and never upgrades. */
interface Trap {
  url: string;
  connections: number;
  requests: string[];
  server: Server;
}

async function trap(respond?: (socket: Socket) => void): Promise<Trap> {
  const t: Trap = { url: '', connections: 0, requests: [], server: createServer() };
  t.server.on('connection', (socket) => {
    t.connections++;
    let head = '';
    socket.on('data', (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        t.requests.push(head);
        respond?.(socket);
      }
    });
    socket.on('error', () => undefined);
  });
  t.server.listen(0, '127.0.0.1');
  await once(t.server, 'listening');
  const addr = t.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  t.url = `ws://127.0.0.1:${addr.port}`;
  return t;
}

describe.concurrent('the albedo binary', () => {
  let silent: Trap;
  beforeAll(async () => {
    silent = await trap();
  });
  afterAll(() => {
    silent.server.close();
    for (const s of [silent]) s.server.unref();
  });

  it('no command prints the help on stdout, exit 0', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('usage: albedo <command> [flags]');
    for (const c of COMMANDS) expect(r.stdout).toContain(c.name);
  });

  it('--help and <cmd> --help exit 0', async () => {
    const [root, cmd] = await Promise.all([run(['--help']), run(['commit', '--help'])]);
    expect(root.code).toBe(0);
    expect(root.stdout).toBe(`${rootHelp()}\n`);
    expect(cmd.code).toBe(0);
    expect(cmd.stdout).toBe(`${commandHelp(COMMANDS.find((c) => c.name === 'commit')!)}\n`);
  });

  it('an unknown command prints usage, exit 2', async () => {
    const r = await run(['publish']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: unknown command "publish"\nusage: albedo <command> [flags]\nrun "albedo --help" for the commands\n');
  });

  it('an unknown flag is a usage error, exit 2', async () => {
    const r = await run(['register', '--wallet', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: unknown flag --wallet\nusage: albedo register /);
  });

  it('a missing required flag is a usage error, exit 2', async () => {
    const r = await run(['commit', '--digest', DIGEST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --repo is required\nusage: albedo commit /);
  });

  it('invalid repo / digest formats fail before any wallet or network access', async () => {
    const env = { CHAIN_NETWORK: silent.url, ALBEDO_WALLET_PATH: '/nonexistent/wallets', ALBEDO_COLDKEY: 'miners', ALBEDO_HOTKEY: 'miner_1' };
    const cases: Array<[string[], string]> = [
      [['--repo', REPO, '--digest', 'main'], 'error: invalid reveal: digest is not sha256:<64 hex>, 40 hex or 64 hex: "main"\n'],
      [['--repo', REPO, '--digest', `${DIGEST}\n`], 'error: invalid reveal: digest is not sha256:<64 hex>, 40 hex or 64 hex:'],
      [['--repo', 'Me/Albedo-Qwen3.6-35b-x', '--digest', DIGEST], 'error: invalid reveal: repo does not match'],
      [['--repo', 'no-slash', '--digest', DIGEST], 'error: invalid reveal: repo must contain "/"'],
      [['--repo', 'a/b|c', '--digest', DIGEST], 'error: invalid reveal: expected 3 "|"-separated parts, got 4'],
      [['--repo', `me/${'x'.repeat(100)}`, '--digest', DIGEST, '--raw'], 'error: raw commitments hold at most 128 bytes; this payload is'],
    ];
    const results = await Promise.all(cases.map(([args]) => run(['commit', '--yes', ...args], env)));
    results.forEach((r, i) => {
      expect(r.code).toBe(1);
      expect(r.stderr.startsWith(cases[i]![1])).toBe(true);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
    expect(silent.connections).toBe(0);
  });

  it('commit without --yes on a non-terminal stdin fails before any wallet or network access', async () => {
    const before = silent.connections;
    const r = await run(['commit', '--repo', REPO, '--digest', DIGEST], { CHAIN_NETWORK: silent.url, ALBEDO_WALLET_PATH: '/nonexistent', ALBEDO_COLDKEY: 'miners', ALBEDO_HOTKEY: 'miner_1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: stdin is not a terminal, so nothing can be confirmed; pass --yes to proceed without a prompt\n');
    expect(silent.connections).toBe(before);
  });

  it('a wallet error is one line, exit 1', async () => {
    const r = await run(['commit', '--repo', REPO, '--digest', DIGEST, '--yes', '--coldkey', 'miners', '--hotkey', 'miner_99'], { ALBEDO_WALLET_PATH: WALLETS, CHAIN_NETWORK: silent.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: hotkey "miner_99" not found: ${path.join(WALLETS, 'miners/hotkeys/miner_99')}\n`);
  });

  it('sends ALBEDO_CHAIN_TOKEN as a bearer header and never prints it', async () => {
    const token = 'devnet-token-5d1f0c2e';
    const refusing = await trap((socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    try {
      const r = await run(['check-commit', '--network', refusing.url], { ALBEDO_CHAIN_TOKEN: token });
      expect(r.code).toBe(1);
      expect(refusing.requests[0]).toMatch(new RegExp(`\\r\\nauthorization: Bearer ${token}\\r\\n`, 'i'));
      expect(r.stderr).toMatch(/^connecting to ws:\/\/127\.0\.0\.1:\d+\/?…\nerror: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/?: .*401/);
      expect(r.stderr + r.stdout).not.toContain(token);
    } finally {
      refusing.server.close();
    }
  });

  it('Ctrl-C exits 130 with "aborted."', async () => {
    const p = start(['check-commit', '--network', silent.url]);
    const deadline = Date.now() + 30_000;
    while (!p.stderrSoFar().includes('connecting to') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    p.child.kill('SIGINT');
    const r = await p.result;
    expect(r.code).toBe(130);
    expect(r.stderr.trimEnd().endsWith('aborted.')).toBe(true);
  });
});
