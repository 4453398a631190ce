import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DevChainClient } from './client.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('chain/devnet/main.ts', () => {
  it('prints READY <url>, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--block-time-ms', '0', '--register', 'validator', '--register', 'miner-1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ALBEDO_DEVNET_TOKEN: 'tok' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^READY (ws:\/\/\S+)$/m.exec(out);
          if (m?.[1]) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code} before READY: ${stderr}`)));
      });
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect(stderr).toContain('NOT SUBTENSOR');
      const c = new DevChainClient(url, { authToken: 'tok' });
      try {
        expect(await c.uidOf(97, 'validator')).toBe(0);
        expect(await c.uidOf(97, 'miner-1')).toBe(1);
        expect((await c.produceBlock()).number).toBe(1);
      } finally {
        await c.close();
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});
