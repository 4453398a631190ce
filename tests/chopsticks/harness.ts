/**
 * Chopsticks harness for the optional real-runtime tier (spec/chain.md §10 tier 3).
 *
 * Starts `@acala-network/chopsticks` as a child process on 127.0.0.1 with the raonet raw chain spec
 * (a real node-subtensor **spec 218** runtime in `:code`), fully offline, and gives the tests a dev RPC
 * channel (`dev_newBlock`, `dev_setStorage`) next to the production client. Nothing here encodes a
 * call or a storage value by hand: dev storage writes go through chopsticks' own metadata-aware
 * `dev_setStorage`, and every extrinsic is built by the production code under test.
 *
 * The binary comes from the cache that tests/chopsticks/run.sh installs (see README.md); the test
 * files skip unless ALBEDO_CHOPSTICKS=1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';

/** Set by run.sh; the test files skip without it. */
export const CHOPSTICKS_ENABLED = process.env.ALBEDO_CHOPSTICKS === '1';

/** The pinned chopsticks version (run.sh installs exactly this, from cache-package-lock.json). */
export const CHOPSTICKS_VERSION = '1.5.1';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Cache dir of the chopsticks install (run.sh exports the same default). */
export const CHOPSTICKS_CACHE = process.env.ALBEDO_CHOPSTICKS_CACHE ?? `${REPO_ROOT}node_modules/.cache/chopsticks`;

/** The raw chain spec whose `:code` is node-subtensor spec 218 (tests/fixtures/chain/README.md). */
export const RAONET_SPEC = fileURLToPath(new URL('../fixtures/chain/raonet-spec218.json', import.meta.url));

/**
 * raonet's genesis has subnets 0 (root) and 1 only; netuid 97 does not exist and spec 218's
 * `register_network` always takes the lowest free netuid (2), so the tier runs on netuid 1: tempo 100,
 * `WeightsSetRateLimit` 100, `Burn` 1 TAO, `WeightsVersionKey` 0, commit-reveal off, 1 neuron at genesis.
 * Every production call takes the netuid as a parameter, so nothing netuid-97-specific is skipped.
 */
export const NETUID = 1;

/** 1 TAO in rao. */
export const TAO = 1_000_000_000n;

export interface Chopsticks {
  /** `ws://127.0.0.1:<port>` for `connectSubtensor({ network })`. */
  readonly endpoint: string;
  readonly port: number;
  /** Milliseconds from spawn until block #1 exists. */
  readonly startupMs: number;
  /** True when chopsticks' own block #1 had failed (Aura slot race, see below) and the harness built it. */
  readonly block1Rebuilt: boolean;
  /** Raw JSON-RPC on a dedicated connection with a long timeout (dev RPCs can take a minute). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** `dev_newBlock`: builds `count` blocks (≈ 0.6 s each here), or one block at `unsafeBlockHeight`. */
  newBlocks(count: number, opts?: { unsafeBlockHeight?: number }): Promise<string>;
  /** `dev_setStorage` with chopsticks' `{ Pallet: { Item: value | [[key args], value][] } }` format. */
  setStorage(values: Record<string, Record<string, unknown>>): Promise<void>;
  /** Sets `System.Account(address)` to a free balance (rao), as a dev chain's endowment. */
  endow(address: string, freeRao: bigint): Promise<void>;
  /** Last lines chopsticks printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

/** Path of the installed chopsticks CLI; throws with the way to install it. */
export function chopsticksBin(): string {
  const bin = `${CHOPSTICKS_CACHE}/node_modules/@acala-network/chopsticks/chopsticks.cjs`;
  if (!existsSync(bin)) throw new Error(`chopsticks ${CHOPSTICKS_VERSION} is not installed at ${CHOPSTICKS_CACHE}: run \`npm run test:chopsticks\` (tests/chopsticks/run.sh installs it)`);
  return bin;
}

/** Start of the chain: now rounded down to the 12 s slot, in ms (without it block #1 panics in Aura, spec §10). */
export function slotAlignedNow(): number {
  return Math.floor(Date.now() / 12_000) * 12_000;
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/**
 * Spawns chopsticks on a free 127.0.0.1 port (Instant block mode: every accepted extrinsic gets its
 * own block at once) and resolves when it answers JSON-RPC.
 */
export async function startChopsticks(opts: { timeoutMs?: number } = {}): Promise<Chopsticks> {
  const bin = chopsticksBin();
  const deadlineMs = opts.timeoutMs ?? 120_000;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, await freePort(), deadlineMs);
    } catch (error) {
      lastError = error;
      // A port taken between probe and bind makes chopsticks exit: try another one.
      if (!(error instanceof ChildExited)) throw error;
    }
  }
  throw lastError;
}

class ChildExited extends Error {}

async function startOnce(bin: string, port: number, deadlineMs: number): Promise<Chopsticks> {
  const started = Date.now();
  const args = [
    bin,
    '--genesis',
    RAONET_SPEC,
    '--build-block-mode',
    'Instant',
    '--timestamp',
    String(slotAlignedNow()),
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--runtime-log-level',
    '0',
  ];
  // LOG_LEVEL=warn: chopsticks' per-block INFO lines cost ~30 % of the block time.
  const child = spawn(process.execPath, args, { env: { ...process.env, LOG_LEVEL: process.env.ALBEDO_CHOPSTICKS_LOG_LEVEL ?? 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      liveChildren.delete(child);
      resolve();
    }),
  );
  const output = () => lines.join('\n');
  const stopChild = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exitPromise;
    clearTimeout(timer);
  };

  while (!(await canConnect(port))) {
    if (exited) throw new ChildExited(`chopsticks exited (${JSON.stringify(exited)}) before listening on ${port}:\n${output()}`);
    if (Date.now() - started > deadlineMs) {
      await stopChild();
      throw new Error(`chopsticks did not listen on ${port} within ${deadlineMs} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const endpoint = `ws://127.0.0.1:${port}`;
  const provider = new WsProvider(endpoint, false, {}, 600_000);
  await provider.connect();
  await provider.isReady;
  // Block #1. With a genesis, chopsticks 1.5.1 builds it inside setup() BEFORE it applies
  // `--timestamp` (context.js: setup(), then timeTravel()). Genesis has no `Timestamp.Now`, so that
  // block takes both its timestamp inherent and its Aura slot digest from two separate `Date.now()`
  // reads; when a slot boundary passes between them Aura panics ("Timestamp slot must match
  // `CurrentSlot`"), the block is dropped and the server still starts at #0 (seen here in roughly 1 of
  // 5 starts). A transaction signed at #0 then fails as `badProof` (genesis state still holds
  // substrate's placeholder `System.BlockHash(0)`). So: if the head is #0, build #1 now — by this time
  // `--timestamp` has set `Timestamp.Now` and `Aura.CurrentSlot` consistently, and it succeeds.
  const headNumber = async () => Number.parseInt((await provider.send<{ number: string }>('chain_getHeader', [])).number, 16);
  const block1Rebuilt = (await headNumber()) === 0;
  if (block1Rebuilt) await provider.send('dev_newBlock', [{ count: 1 }]);
  if ((await headNumber()) < 1) {
    await provider.disconnect().catch(() => undefined);
    await stopChild();
    throw new Error(`chopsticks could not build block #1:\n${output()}`);
  }
  const startupMs = Date.now() - started;

  const rpc = <T>(method: string, params: unknown[] = []) => provider.send<T>(method, params);
  return {
    endpoint,
    port,
    startupMs,
    block1Rebuilt,
    rpc,
    newBlocks: (count, o = {}) => rpc<string>('dev_newBlock', [{ count, ...(o.unsafeBlockHeight === undefined ? {} : { unsafeBlockHeight: o.unsafeBlockHeight }) }]),
    setStorage: async (values) => {
      await rpc('dev_setStorage', [values]);
    },
    endow: async (address, freeRao) => {
      await rpc('dev_setStorage', [{ System: { Account: [[[address], { providers: 1, data: { free: freeRao.toString() } }]] } }]);
    },
    output,
    stop: async () => {
      await provider.disconnect().catch(() => undefined);
      await stopChild();
    },
  };
}

/** sr25519 dev keys (`//Alice`, `//Alice//validator`, …), SS58 prefix 42. */
export async function devKeys(): Promise<(uri: string) => KeyringPair> {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  return (uri) => keyring.addFromUri(uri);
}

/** Rejection of `promise` (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => null,
    (e: unknown) => e as Error,
  );
  if (outcome === null) throw new Error('expected a rejection, got success');
  return outcome;
}
