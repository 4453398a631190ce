/**
 * The `albedo` miner CLI end to end: the real binary (child processes) against the local dev chain
 * (chain/devnet/, real `ApiPromise` over WebSocket, bearer token required), with the public fixture
 * wallets. The dev chain's clock is held two minutes behind the wall clock, so a timelocked commitment
 * stays pending (its drand round is in the chain's future) until the test advances chain time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevnetNode, startDevnetNode } from '../../chain/devnet/rpc-node.ts';
import { encodeBtPasswordEnv } from '../../chain/wallet.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/albedo.mjs');
const WALLETS = path.join(ROOT, 'tests/fixtures/chain/wallets');
const TOKEN = 'miner-cli-test-token-4f1c9a';
const COLDKEY = '5GeiR6w3ad5JxpwdUS3ADPLexL5SDrbav3k8J5D7WfHTh1Q5'; // plaintext/miners
const NACL_COLDKEY = '5ChoH4oJEKVqFcFd16yhzxmQTYQA3zxEUrggxxmYAor7tTni'; // nacl/miners
const MINER_1 = '5FEc1TfRxmvKbMwQ8UpbszLa2AdXzTbcjK1ACXQBrhgGA9EF';
const MINER_2 = '5DCrsirhNuoNnW5urMbpV2arpvfuVhByrHYY22dQVgpQhKoD';
const REPO = 'miner/albedo-qwen3.6-35b-cli';
const DIGEST = `sha256:${'c0ffee00'.repeat(8)}`;
/** Chain time = wall clock − this, until the test advances it. */
const CHAIN_LAG_S = 120;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<Result>;
  stdout(): string;
}

let node: DevnetNode;
const nodeLog: string[] = [];
/** Everything every CLI run printed (checked for the token at the end). */
const printed: string[] = [];
const children = new Set<ChildProcess>();
const cwd = mkdtempSync(path.join(tmpdir(), 'albedo-miner-cli-'));

function start(args: string[], env: Record<string, string> = {}): Running {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(CHAIN_|ALBEDO_|BT_PW_)/.test(k)) base[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...base, ALBEDO_WALLET_PATH: path.join(WALLETS, 'plaintext'), CHAIN_NETWORK: node.url, ALBEDO_CHAIN_TOKEN: TOKEN, ALBEDO_COLDKEY: 'miners', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      printed.push(out, err);
      resolve({ code, stdout: out, stderr: err });
    });
  });
  return { child, done, stdout: () => out };
}

const albedo = (args: string[], env: Record<string, string> = {}) => start(args, env).done;

/** Fails with the child's output, so a red test says what the CLI printed. */
function expectExit(r: Result, code: number): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}--- dev chain log (tail)\n${nodeLog.slice(-20).join('\n')}`);
}

async function waitForOutput(p: Running, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(p.stdout());
    if (m) return m;
    if (p.child.exitCode !== null || Date.now() > deadline) {
      const r = await Promise.race([p.done, new Promise<Result>((resolve) => setTimeout(() => resolve({ code: null, stdout: p.stdout(), stderr: '(still running)' }), 1000))]);
      throw new Error(`no ${re} in the output\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  node = await startDevnetNode({
    authToken: TOKEN,
    blockTimeMs: 250,
    now: () => Date.now() - CHAIN_LAG_S * 1000,
    genesis: { endowments: { [COLDKEY]: 50_000_000_000n, [NACL_COLDKEY]: 50_000_000_000n } },
    log: (line) => nodeLog.push(line),
  });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); // after a failed test
  await node?.close();
  rmSync(cwd, { recursive: true, force: true });
});

describe.sequential('albedo against the local dev chain', () => {
  let nacl: Promise<Result> | undefined;

  it('register --yes registers the hotkey; a second run reports the uid; unregistered hotkeys cannot commit; the token is required', async () => {
    const first = await albedo(['register', '--hotkey', 'miner_1', '--yes']);
    expectExit(first, 0);
    expect(first.stdout).toBe('registration cost: 1 TAO (balance: 50 TAO)\nregistered: uid 0\n');
    expect(first.stderr).toContain('finalized');

    // An encrypted ($NACL) coldkey, password from the btcli BT_PW_ variable: argon2 takes ~10 s, so it
    // runs in the background while the next tests go on; its uid is 1 (miner_1 already holds 0).
    const coldkeyFile = path.join(WALLETS, 'nacl/miners/coldkey');
    const pw = encodeBtPasswordEnv(coldkeyFile, 'pass_me_the_keys');
    nacl = albedo(['register', '--coldkey', 'miners', '--hotkey', 'miner_1', '--yes'], { ALBEDO_WALLET_PATH: path.join(WALLETS, 'nacl'), [pw.name]: pw.value });

    const [again, unregistered, noToken] = await Promise.all([
      albedo(['register', '--hotkey', 'miner_1', '--yes']),
      albedo(['commit', '--hotkey', 'miner_2', '--repo', REPO, '--digest', DIGEST, '--yes']),
      albedo(['check-commit'], { ALBEDO_CHAIN_TOKEN: '' }),
    ]);
    expectExit(again, 0);
    expect(again.stdout).toBe('already registered: uid 0\n');
    expect(again.stderr).not.toContain('unlocking');

    expectExit(unregistered, 1);
    expect(unregistered.stdout).toBe('');
    expect(unregistered.stderr.trimEnd().split('\n').at(-1)).toBe(`error: hotkey ${MINER_2} is not registered on netuid 97 (run albedo register)`);

    expectExit(noToken, 1);
    expect(noToken.stderr).toMatch(/error: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: .*401/);
  }, 120_000);

  it('commit --yes: committed, pending until the drand round passes, then revealed; check-commit lists it and ignores --raw commits', async () => {
    const commit = start(['commit', '--hotkey', 'miner_1', '--repo', REPO, '--digest', DIGEST, '--yes']);
    const m = await waitForOutput(commit, /committed in block (\d+) \(reveal round (\d+)\)\n/, 90_000);
    const [commitBlock, round] = [Number(m[1]), Number(m[2])];
    expect(commit.stdout()).toBe(
      [`payload: v7|${REPO}|${DIGEST}`, 'coldkey: miners', `hotkey: miner_1 (${MINER_1})`, 'netuid: 97', `network: ${node.url}/`, `committed in block ${commitBlock} (reveal round ${round})`, ''].join('\n'),
    );

    // The chain clock lags: the round has not come, so the commitment is pending.
    const pending = await albedo(['check-commit', '--hotkey', MINER_1]);
    expectExit(pending, 0);
    expect(pending.stdout).toBe(`no v7 commits found for hotkey ${MINER_1}\npending: reveal round ${round}\n`);

    node.runtime.advanceTime(CHAIN_LAG_S + 30); // drand rounds pass; the next block reveals
    const done = await commit.done;
    expectExit(done, 0);
    const revealed = /revealed at block (\d+)\n$/.exec(done.stdout);
    expect(revealed).not.toBeNull();
    const revealBlock = Number(revealed![1]);
    expect(revealBlock).toBeGreaterThan(commitBlock);

    // A raw commitment (test chains): printed as such, no wait, never listed.
    const raw = await albedo(['commit', '--hotkey', 'miner_1', '--repo', REPO, '--digest', 'd'.repeat(40), '--raw', '--yes']);
    expectExit(raw, 0);
    expect(raw.stdout).toMatch(/\ncommitted in block \d+ \(raw\)\n$/);
    expect(raw.stderr).not.toContain('waiting for the reveal');

    const [all, mine] = await Promise.all([albedo(['check-commit']), albedo(['check-commit', '--hotkey', MINER_1])]);
    const listing = `block=${revealBlock}  hotkey=${MINER_1.slice(0, 10)}…  ${REPO}@${DIGEST}\n\n1 commit(s)\n`;
    expectExit(all, 0);
    expect(all.stdout).toBe(listing);
    expectExit(mine, 0);
    expect(mine.stdout).toBe(listing); // nothing pending any more
  }, 180_000);

  it('a $NACL coldkey (password from BT_PW_…) registers its hotkey', async () => {
    expect(nacl).toBeDefined();
    const r = await nacl!;
    expectExit(r, 0);
    expect(r.stdout).toBe('registration cost: 1 TAO (balance: 50 TAO)\nregistered: uid 1\n');
    expect(r.stderr).toContain('unlocking coldkey miners');
    expect(r.stderr + r.stdout).not.toContain('pass_me_the_keys');
  }, 120_000);

  it('no run printed the chain token', () => {
    expect(printed.length).toBe(20); // 10 runs × (stdout, stderr)
    for (const text of printed) expect(text).not.toContain(TOKEN);
  });
});
