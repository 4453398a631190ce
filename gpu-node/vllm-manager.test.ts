import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineFault } from './engine.ts';
import { processAlive, processGroupAlive } from './process-group.ts';
import { STUB_VLLM_MAIN_PATH, stubVllmCommand, VllmManager, vllmCommand, type EngineLaunchContext } from './vllm-manager.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'albedo-vllm-manager-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Process-group id of `pid`, from /proc. */
function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

async function expectFault(promise: Promise<unknown>, code: string): Promise<EngineFault> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EngineFault);
  const fault = (error as EngineFault).fault;
  expect(fault.faultClass).toBe('INFRA_FAULT');
  expect(fault.code).toBe(code);
  return error as EngineFault;
}

const quickBoot = { pollIntervalMs: 50, stopGraceMs: 5_000 };

describe('vllmCommand', () => {
  const ctx: EngineLaunchContext = { host: '127.0.0.1', port: 9101, apiKeyEnv: 'VLLM_API_KEY' };

  it('builds the production command line without remote-code trust', () => {
    const cmd = vllmCommand({ modelDir: '/cache/m', servedModelName: 'sha256-abc', tensorParallelSize: 4, cudaVisibleDevices: '0,1,2,3' })(ctx);
    expect(cmd.command).toBe('python3');
    expect(cmd.args.slice(0, 2)).toEqual(['-m', 'vllm.entrypoints.openai.api_server']);
    expect(cmd.args).toEqual(expect.arrayContaining(['--model', '/cache/m', '--served-model-name', 'sha256-abc', '--port', '9101', '--tensor-parallel-size', '4']));
    expect(cmd.args).not.toContain('--trust-remote-code');
    expect(cmd.args.join(' ')).not.toContain('api-key'); // the key travels in the environment, never argv
    expect(cmd.env).toEqual({ CUDA_VISIBLE_DEVICES: '0,1,2,3' });
  });

  it('refuses to start anything asked to trust remote code', async () => {
    const manager = new VllmManager({ command: vllmCommand({ modelDir: '/m', servedModelName: 'x', extraArgs: ['--trust-remote-code'] }), ...quickBoot });
    const error = await expectFault(manager.start(), 'vllm_boot_failed');
    expect(error.message).toContain('trust-remote-code');
    expect(manager.pid).toBeUndefined();
  });
});

describe('VllmManager with the stub engine as a real child process', () => {
  it('starts in its own process group, becomes ready, serves chat, and stops', async () => {
    const manager = new VllmManager({ command: stubVllmCommand({ models: ['org/plain'] }), apiKey: 'engine-key', ...quickBoot });
    try {
      await manager.start();
      const pid = manager.pid!;
      expect(pgidOf(pid)).toBe(pid); // detached ⇒ leader of a fresh group
      expect(manager.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The key reached the child through the environment: unauthenticated calls are refused.
      expect((await fetch(`${manager.baseUrl}/v1/models`)).status).toBe(401);
      const text = await manager.chat('org/plain', [{ role: 'user', content: 'say something about parsers' }], { maxTokens: 50, temperature: 0.7, seed: 1 }, new AbortController().signal);
      expect(text.length).toBeGreaterThan(0);
      await manager.stop();
      expect(processGroupAlive(pid)).toBe(false);
      expect(() => manager.baseUrl).toThrow();
      await expectFault(manager.chat('org/plain', [{ role: 'user', content: 'x' }], { maxTokens: 5, temperature: 0 }, new AbortController().signal), 'generation_transport_error');
    } finally {
      await manager.stop();
    }
  });

  it('stop() kills its whole group (grandchildren too) and nothing else', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // sh leaves a `sleep` grandchild in the group, then execs the stub (same pid, same group).
    const withGrandchild = (ctx: EngineLaunchContext) => ({
      command: 'sh',
      args: ['-c', 'sleep 300 & echo $! > "$PIDFILE"; exec "$@"', 'sh', process.execPath, ...stubVllmCommand({ models: ['org/a'] })(ctx).args],
      env: { PIDFILE: pidFile },
    });
    const victim = new VllmManager({ command: withGrandchild, ...quickBoot });
    const bystander = new VllmManager({ command: stubVllmCommand({ models: ['org/b'] }), ...quickBoot });
    const unrelated = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      await Promise.all([victim.start(), bystander.start()]);
      const grandchild = Number(readFileSync(pidFile, 'utf8').trim());
      const victimPid = victim.pid!;
      expect(pgidOf(grandchild)).toBe(victimPid);
      expect(processAlive(grandchild)).toBe(true);

      await victim.stop();

      expect(processGroupAlive(victimPid)).toBe(false);
      expect(processAlive(grandchild)).toBe(false);
      expect(processAlive(unrelated.pid!)).toBe(true);
      expect(processAlive(process.pid)).toBe(true);
      expect((await fetch(`${bystander.baseUrl}/health`)).status).toBe(200);
    } finally {
      unrelated.kill('SIGKILL');
      await Promise.all([victim.stop(), bystander.stop()]);
    }
  });

  it('fails with vllm_boot_failed when the engine never becomes ready, and cleans up', async () => {
    const pidFile = join(dir, 'hung.pid');
    const manager = new VllmManager({
      command: () => ({ command: 'sh', args: ['-c', 'echo $$ > "$PIDFILE"; exec sleep 300'], env: { PIDFILE: pidFile } }),
      startupTimeoutMs: 300,
      ...quickBoot,
    });
    const error = await expectFault(manager.start(), 'vllm_boot_failed');
    expect(error.message).toContain('not ready after 300 ms');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(processAlive(pid)).toBe(false);
    expect(manager.pid).toBeUndefined();
  });

  it('fails with vllm_boot_failed (exit code and last output) on early exit, and withholds secrets from the child env', async () => {
    const envFile = join(dir, 'env.json');
    const manager = new VllmManager({
      command: () => ({
        command: process.execPath,
        args: ['-e', 'require("fs").writeFileSync(process.env.ENV_OUT, JSON.stringify(process.env)); console.error("CUDA error: out of memory"); process.exit(3)'],
        env: { ENV_OUT: envFile },
      }),
      apiKey: 'engine-key',
      env: { PATH: process.env.PATH ?? '', OPENROUTER_API_KEY: 'do-not-leak', DB_PASSWORD: 'nope', HARMLESS: 'yes' },
      ...quickBoot,
    });
    const error = await expectFault(manager.start(), 'vllm_boot_failed');
    expect(error.message).toContain('code 3');
    expect(error.message).toContain('CUDA error: out of memory');
    const childEnv = JSON.parse(readFileSync(envFile, 'utf8')) as Record<string, string>;
    expect(childEnv.HARMLESS).toBe('yes');
    expect(childEnv.VLLM_API_KEY).toBe('engine-key');
    expect(childEnv.OPENROUTER_API_KEY).toBeUndefined();
    expect(childEnv.DB_PASSWORD).toBeUndefined();
  });

  it('fails with vllm_boot_failed when the command does not exist', async () => {
    const manager = new VllmManager({ command: () => ({ command: join(dir, 'no-such-binary'), args: [] }), ...quickBoot });
    const error = await expectFault(manager.start(), 'vllm_boot_failed');
    expect(error.message).toContain('failed to spawn');
  });

  it('resolves the stand-in CLI relative to the module', () => {
    expect(STUB_VLLM_MAIN_PATH.endsWith('gpu-node/stub-vllm-main.ts')).toBe(true);
  });
});
