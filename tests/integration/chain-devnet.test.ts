/**
 * Issue #4 acceptance, end to end over real WebSockets: the local dev chain runs as a child process
 * serving recorded subtensor metadata; the production client (`@polkadot/api`) and the miner-side code
 * register hotkeys and make timelocked commits; the chain reveals them with its beacon; the chain reader
 * turns them into submission rows. It handles a hotkey swap and a deregistration, and survives the
 * chain process being SIGKILLed and restarted mid-scan without losing or duplicating a commit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeyringPair } from '@polkadot/keyring/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevnetAdmin, RawWsSender } from '../../chain/devnet/admin.ts';
import { sendAndWait, signOnce } from '../../chain/extrinsics.ts';
import { burnedRegister, commitReveal, waitForReveal } from '../../chain/miner-ops.ts';
import { call } from '../../chain/pallets.ts';
import { ChainReader } from '../../chain/reader.ts';
import { subtensorReaderSource } from '../../chain/reader-source.ts';
import { connectSubtensor, type Subtensor } from '../../chain/subtensor.ts';
import { loadColdkey, loadHotkey } from '../../chain/wallet.ts';
import { ingestInto } from '../support/ingest.ts';
import { freshDatabase, type TestDatabase, testServers } from '../support/pg.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WALLETS = join(ROOT, 'tests/fixtures/chain/wallets/plaintext');
const NETUID = 97;
const DIGEST = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface ChainProcess {
  child: ChildProcess;
  url: string;
}

function startChain(args: string[], token: string): Promise<ChainProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'chain/devnet/main.ts'), ...args], {
    env: { ...process.env, ALBEDO_DEVNET_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (ws:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`dev chain exited with ${code}: ${stderr.slice(-2000)}`)));
  });
}

const server = testServers()[0]!;

describe('chain layer end to end on the dev chain (child process)', () => {
  const token = randomBytes(24).toString('base64url');
  const dir = mkdtempSync(join(tmpdir(), 'albedo-chain-e2e-'));
  const dataFile = join(dir, 'chain.jsonl');
  let port: number;
  let chainArgs: string[];
  let chainProc: ChainProcess;
  let chain: Subtensor;
  let admin: DevnetAdmin;
  let adminSender: RawWsSender;
  let t: TestDatabase;
  let coldkey: KeyringPair;
  const hot: KeyringPair[] = [];
  let reader: ChainReader;
  const readerErrors: string[] = [];

  beforeAll(async () => {
    t = await freshDatabase(server);
    coldkey = (await loadColdkey({ root: WALLETS, wallet: 'miners' })).pair;
    for (const name of ['miner_1', 'miner_2', 'miner_3', 'miner_4']) hot.push((await loadHotkey({ root: WALLETS, wallet: 'miners', hotkey: name })).pair);
    port = await freePort();
    chainArgs = ['--port', String(port), '--block-time-ms', '250', '--data-file', dataFile, '--endow', `${coldkey.address}=1000`, '--finality-lag', '1', '--max-uids', '3', '--immunity-period', '0'];
    chainProc = await startChain(chainArgs, token);
    chain = await connectSubtensor({ network: chainProc.url, headers: { Authorization: `Bearer ${token}` }, reconnect: { initialMs: 100, maxMs: 1_000, jitter: 0.1 } });
    adminSender = await RawWsSender.connect(chainProc.url, { token });
    admin = new DevnetAdmin(adminSender);
    reader = new ChainReader({
      db: t.db,
      source: subtensorReaderSource(chain, NETUID),
      netuid: NETUID,
      scanLagBlocks: 1,
      pollMs: 200,
      ingest: ingestInto(t),
      onError: (e) => readerErrors.push(e.message),
    });
  }, 60_000);

  afterAll(async () => {
    reader?.stop();
    await chain?.close();
    adminSender?.close();
    chainProc?.child.kill('SIGKILL');
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function submissionsOf(hotkey: string) {
    return (await t.db.query<{ block_number: string; block_hash: string; fault_code: string | null; model_uri: string }>(
      'SELECT s.block_number::text, c.block_hash, s.fault_code, s.model_uri FROM model_submissions s JOIN chain_commits c ON c.submission_id = s.id WHERE s.hotkey = $1 ORDER BY s.block_number',
      [hotkey],
    )).rows;
  }

  /** The dev chain's drand clock passes the reveal round (spec §4: about 12 s after the commit). */
  async function passRevealRound(): Promise<void> {
    await admin.newBlock({ advanceSeconds: 15 });
    await admin.newBlock();
  }

  it('register → timelocked commit → reveal → submission row, with the reveal block hash as seed', async () => {
    const reg = await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: hot[0]!.address });
    expect(reg).toMatchObject({ uid: 0, alreadyRegistered: false });
    expect(await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: hot[0]!.address })).toMatchObject({ uid: 0, alreadyRegistered: true });
    expect((await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: hot[1]!.address })).uid).toBe(1);

    const committed = await commitReveal(chain, { netuid: NETUID, hotkey: hot[0]!, repo: 'miner1/albedo-qwen3.6-35b-first', digest: DIGEST(1) });
    expect(committed.revealRound).toBeGreaterThan(19_000_000);
    await passRevealRound();
    const revealBlock = await waitForReveal(chain, { netuid: NETUID, hotkey: hot[0]!.address, payload: committed.payload, sinceBlock: committed.blockNumber, timeoutMs: 20_000, pollMs: 100 });

    reader.start();
    await waitFor(async () => (await submissionsOf(hot[0]!.address)).length === 1, { timeoutMs: 20_000 });
    const [row] = await submissionsOf(hot[0]!.address);
    expect(row).toMatchObject({ block_number: String(revealBlock), block_hash: await chain.blockHash(revealBlock), model_uri: `miner1/albedo-qwen3.6-35b-first@${DIGEST(1)}` });
    const miner = (await t.db.query('SELECT uid, coldkey, registration_block FROM miners WHERE hotkey = $1', [hot[0]!.address])).rows[0];
    expect(miner).toMatchObject({ uid: 0, coldkey: coldkey.address });
  }, 90_000);

  it('survives the chain being SIGKILLed and restarted mid-scan: the pending commit reveals once and is ingested once', async () => {
    const committed = await commitReveal(chain, { netuid: NETUID, hotkey: hot[1]!, repo: 'miner2/albedo-qwen3.6-35b-second', digest: DIGEST(2) });
    // Kill while the reader is polling and the commitment is still sealed.
    chainProc.child.kill('SIGKILL');
    await new Promise((resolve) => chainProc.child.once('exit', resolve));
    adminSender.close();
    await new Promise((resolve) => setTimeout(resolve, 600)); // a few failed reader polls and reconnect attempts
    chainProc = await startChain(chainArgs, token);
    adminSender = await RawWsSender.connect(chainProc.url, { token });
    admin = new DevnetAdmin(adminSender);
    await waitFor(async () => chain.api.isConnected, { timeoutMs: 20_000 });
    await passRevealRound();
    await waitFor(async () => (await submissionsOf(hot[1]!.address)).length === 1, { timeoutMs: 30_000 });
    // Let the reader run over the same blocks a few more times: still exactly one commit and one submission each.
    await admin.newBlock({ count: 5 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const counts = (await t.db.query<{ hotkey: string; commits: string; subs: string }>(
      `SELECT c.hotkey, count(*)::text AS commits, count(c.submission_id)::text AS subs FROM chain_commits c WHERE c.ignored_reason IS NULL GROUP BY c.hotkey ORDER BY c.hotkey`,
    )).rows;
    expect(counts).toEqual(
      [hot[0]!.address, hot[1]!.address].sort().map((hotkey) => ({ hotkey, commits: '1', subs: '1' })),
    );
    expect(committed.blockNumber).toBeGreaterThan(0);
  }, 90_000);

  it('detects a hotkey swap (new hotkey rejected as hotkey_swap) and a deregistration by replacement', async () => {
    // swap_hotkey miner_1 → miner_3, signed by the coldkey: uid 0 keeps its registration block.
    const swap = await signOnce(call(chain.api, 'subtensorModule', 'swapHotkey')(hot[0]!.address, hot[2]!.address, null), coldkey);
    await sendAndWait(chain.api, swap, { waitFor: 'inBlock' });
    await waitFor(async () => (await t.db.query("SELECT 1 FROM used_hotkeys WHERE hotkey = $1 AND source = 'swap'", [hot[2]!.address])).rowCount === 1, { timeoutMs: 20_000 });
    const swapEvent = (await t.db.query<{ message: string }>("SELECT message FROM events WHERE event_type = 'hotkey_swap_detected'")).rows;
    expect(swapEvent).toHaveLength(1);
    const regBlock = (await chain.neurons(NETUID)).find((n) => n.uid === 0)?.registrationBlock;
    expect(regBlock).toBeGreaterThan(0);
    expect(swapEvent[0]?.message).toBe(
      `hotkey swap detected: uid 0 BEFORE hotkey=${hot[0]!.address} BlockAtRegistration=${regBlock} | AFTER hotkey=${hot[2]!.address} BlockAtRegistration=${regBlock} <- identical, no re-registration -> swap_hotkey`,
    );

    const committed = await commitReveal(chain, { netuid: NETUID, hotkey: hot[2]!, repo: 'miner3/albedo-qwen3.6-35b-swapped', digest: DIGEST(3) });
    await passRevealRound();
    await waitFor(async () => (await submissionsOf(hot[2]!.address)).length === 1, { timeoutMs: 20_000 });
    expect((await submissionsOf(hot[2]!.address))[0]?.fault_code).toBe('hotkey_swap');
    expect(committed.payload).toContain('swapped');

    // The subnet holds 3 uids: a 4th registration replaces the oldest (uid 0 or 1), a deregistration.
    expect((await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: hot[3]!.address })).uid).toBe(2);
    const extra = (await loadHotkey({ root: join(ROOT, 'tests/fixtures/chain/wallets/nacl'), wallet: 'miners', hotkey: 'miner_1' })).pair;
    const replaced = await burnedRegister(chain, { netuid: NETUID, coldkey, hotkey: extra.address });
    expect([0, 1]).toContain(replaced.uid);
    await waitFor(async () => (await t.db.query("SELECT 1 FROM events WHERE event_type = 'hotkey_deregistered'")).rowCount === 1, { timeoutMs: 20_000 });
    expect(readerErrors.filter((e) => !/disconnected|WebSocket|ECONNREFUSED|connect|closed/i.test(e))).toEqual([]);
  }, 90_000);
});
