import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUBTENSOR_SIGNED_EXTENSIONS } from '../signed-extensions.ts';
import { DevnetAdmin, RawWsSender } from './admin.ts';
import { RAO_PER_TAO } from './genesis.ts';
import { CliUsageError, HELP, parseCli, taoToRao } from './main.ts';
import { devKey } from './runtime-test-kit.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const alice = devKey('//Alice');
const bob = devKey('//Bob');

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'chain/devnet/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^READY (ws:\/\/\S+)$/m.exec(out);
      if (m) resolve({ child, url: m[1] as string, exited });
    });
    exited.then((code) => reject(new Error(`node exited with ${code} before READY: ${stderr.slice(-2000)}`)));
  });
}

describe('parseCli', () => {
  it('maps flags to node options', () => {
    const { options } = parseCli(
      ['--port', '9944', '--block-time-ms', '0', '--endow', `${alice.address}=12.5`, '--register', `${bob.address}:${alice.address}`, '--beacon', 'recorded-quicknet', '--commit-reveal'],
      { ALBEDO_DEVNET_TOKEN: 'tok' },
    );
    expect(options.port).toBe(9944);
    expect(options.host).toBe('127.0.0.1');
    expect(options.blockTimeMs).toBe(0);
    expect(options.authToken).toBe('tok');
    expect(options.beacon).toEqual({ kind: 'recorded-quicknet' });
    expect(options.genesis?.endowments).toEqual({ [alice.address]: 12_500_000_000n });
    expect(options.genesis?.registrations).toEqual([{ hotkey: bob.address, coldkey: alice.address, netuid: 97 }]);
    expect(options.genesis?.subnets?.[0]?.commitRevealWeightsEnabled).toBe(true);
    expect(parseCli(['--help']).help).toBe(true);
    expect(HELP).toContain('LOCAL STAND-IN');
    expect(() => parseCli(['--port', 'x'])).toThrow(CliUsageError);
    expect(() => parseCli(['--bogus'])).toThrow(CliUsageError);
    expect(() => parseCli(['--endow', 'nope'])).toThrow(CliUsageError);
    expect(taoToRao('1')).toBe(RAO_PER_TAO);
    expect(taoToRao('0.000000001')).toBe(1n);
    expect(() => taoToRao('1.0000000001')).toThrow(CliUsageError);
  });
});

describe('dev chain CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'albedo-devnet-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('survives SIGKILL: restarts from the data file with the same hashes and continues', async () => {
    const dataFile = join(dir, 'chain.jsonl');
    const args = ['--block-time-ms', '0', '--data-file', dataFile, '--endow', `${alice.address}=100`, '--register', `${bob.address}:${alice.address}`];
    const first = await startCli(args, { ALBEDO_DEVNET_TOKEN: 'tok' });
    const sender = await RawWsSender.connect(first.url, { token: 'tok' });
    const admin = new DevnetAdmin(sender);
    const produced = await admin.newBlock({ count: 5, advanceSeconds: 30 });
    const info = await admin.info();
    expect(info.best).toEqual({ number: 5, hash: produced.hash });
    expect(info.finalized.number).toBe(3);
    sender.close();
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startCli(args, { ALBEDO_DEVNET_TOKEN: 'tok' });
    try {
      const provider = new WsProvider(second.url, 1000, { Authorization: 'Bearer tok' });
      const api = await ApiPromise.create({
        provider,
        signedExtensions: SUBTENSOR_SIGNED_EXTENSIONS,
        noInitWarn: true,
        throwOnConnect: true,
      });
      const header = await api.rpc.chain.getHeader();
      expect(header.hash.toHex()).toBe(produced.hash);
      expect(header.number.toNumber()).toBe(5);
      expect((await api.query.subtensorModule?.uids?.(97, bob.address))?.toJSON()).toBe(0);
      const resumedAdmin = new DevnetAdmin(provider);
      expect((await resumedAdmin.info()).chainTimeMs).toBeGreaterThanOrEqual(info.chainTimeMs);
      const next = await resumedAdmin.newBlock();
      expect(next.number).toBe(6);
      expect((await api.rpc.chain.getHeader(next.hash)).parentHash.toHex()).toBe(produced.hash);
      await api.disconnect();
    } finally {
      second.child.kill('SIGTERM');
    }
    expect(await second.exited).toBe(0);
  });
});
