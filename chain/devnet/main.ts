/**
 * CLI: starts the ⚠ LOCAL STAND-IN chain (not subtensor) and prints `READY <url>` on stdout once it
 * listens. Diagnostics go to stderr. Stops cleanly (flushing `--data-file`) on SIGINT/SIGTERM.
 *
 *   node --import tsx chain/devnet/main.ts [--host 127.0.0.1] [--port 0] [--block-time-ms 1000]
 *       [--data-file .albedo/devnet.json] [--weights-rate-limit 100] [--weights-version-key 0]
 *       [--netuid 97] [--register <hotkey>]...
 *
 * The bearer token, if any, is read from `ALBEDO_DEVNET_TOKEN` (never from argv, which `ps` shows).
 */
import { parseArgs } from 'node:util';
import { DevChainClient } from './client.ts';
import { STANDIN_LABEL } from './protocol.ts';
import { startDevChain } from './server.ts';

function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,10}$/.test(value)) throw new RangeError(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'block-time-ms': { type: 'string' },
      'data-file': { type: 'string' },
      'weights-rate-limit': { type: 'string' },
      'weights-version-key': { type: 'string' },
      netuid: { type: 'string' },
      register: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help === true) {
    process.stdout.write(`${STANDIN_LABEL}\nusage: main.ts [--host H] [--port P] [--block-time-ms MS] [--data-file F] [--weights-rate-limit N] [--weights-version-key N] [--netuid N] [--register HOTKEY]...\n`);
    return;
  }
  const authToken = process.env.ALBEDO_DEVNET_TOKEN;
  const chain = await startDevChain({
    host: values.host ?? '127.0.0.1',
    port: intFlag('port', values.port, 0),
    blockTimeMs: intFlag('block-time-ms', values['block-time-ms'], 1000),
    weightsRateLimitBlocks: intFlag('weights-rate-limit', values['weights-rate-limit'], 100),
    weightsVersionKey: intFlag('weights-version-key', values['weights-version-key'], 0),
    ...(values['data-file'] !== undefined ? { dataFile: values['data-file'] } : {}),
    ...(authToken !== undefined && authToken !== '' ? { authToken } : {}),
  });

  const toRegister = values.register ?? [];
  if (toRegister.length > 0) {
    const netuid = intFlag('netuid', values.netuid, 97);
    const client = new DevChainClient(chain.url, authToken ? { authToken } : {});
    try {
      for (const hotkey of toRegister) {
        const r = await client.register(netuid, hotkey);
        process.stderr.write(`[albedo-devnet] ${hotkey} → uid ${r.uid} on netuid ${netuid}${r.alreadyRegistered ? ' (already registered)' : ''}\n`);
      }
    } finally {
      await client.close();
    }
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[albedo-devnet] ${signal}: stopping\n`);
    chain.close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`[albedo-devnet] close failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(`READY ${chain.url}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`[albedo-devnet] failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
