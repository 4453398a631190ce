/**
 * CLI of the LOCAL STAND-IN dev chain node (not finney, not a subtensor node):
 *
 *   node --import tsx chain/devnet/main.ts --port 0 --block-time-ms 1000 --data-file .albedo/devnet-chain.jsonl \
 *     --endow 5Grw…=1000 --register <hotkeySs58>:<coldkeySs58> [--host 127.0.0.1] [--beacon local|recorded-quicknet]
 *
 * Prints `READY ws://host:port` on stdout once listening; logs go to stderr. Token from env
 * `ALBEDO_DEVNET_TOKEN`. SIGTERM/SIGINT close the node (data file compacted) and exit 0.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BeaconOptions } from './beacon.ts';
import { DEFAULT_NETUID, DEFAULT_SUBNET, type GenesisOptions, type GenesisRegistration, RAO_PER_TAO } from './genesis.ts';
import { startDevnetNode } from './rpc-node.ts';
import { DEFAULT_FINALITY_LAG, DEFAULT_STATE_HISTORY } from './runtime.ts';

export const DEFAULT_CLI_BLOCK_TIME_MS = 1000;
export const TOKEN_ENV = 'ALBEDO_DEVNET_TOKEN';

export const HELP = `albedo-devnet — LOCAL STAND-IN subtensor dev chain (recorded spec-381 metadata; NOT finney)

Usage: node --import tsx chain/devnet/main.ts [options]

  --host <addr>            listen address (default 127.0.0.1; 0.0.0.0 only if you mean it)
  --port <n>               listen port (default 0 = ephemeral)
  --block-time-ms <n>      produce a block every n ms; 0 = only on demand via dev_newBlock (default ${DEFAULT_CLI_BLOCK_TIME_MS})
  --data-file <path>       persist the chain and resume from it (restart with the same genesis options)
  --endow <ss58>=<tao>     endow an account at genesis (repeatable; TAO, decimals allowed)
  --register <hot>:<cold>[:<netuid>]
                           pre-register a hotkey owned by a coldkey at genesis (repeatable)
  --netuid <n>             the genesis subnet (default ${DEFAULT_NETUID})
  --tempo <n>              Tempo (default ${DEFAULT_SUBNET.tempo})
  --weights-rate-limit <n> WeightsSetRateLimit in blocks (default ${DEFAULT_SUBNET.weightsSetRateLimit})
  --burn-tao <tao>         registration burn (default 1)
  --max-uids <n>           MaxAllowedUids (default ${DEFAULT_SUBNET.maxAllowedUids})
  --immunity-period <n>    ImmunityPeriod (default ${DEFAULT_SUBNET.immunityPeriod})
  --commit-reveal          enable CommitRevealWeightsEnabled (CRv4 weights)
  --beacon <kind>          local (stand-in beacon, default) | recorded-quicknet (real key, fixture pulses only)
  --beacon-seed <s>        seed of the local stand-in beacon key
  --finality-lag <n>       finalized head trails best by n blocks (default ${DEFAULT_FINALITY_LAG})
  --state-history <n>      blocks whose state stays queryable (default ${DEFAULT_STATE_HISTORY})
  --help                   this text

Env: ${TOKEN_ENV}=<token> requires "Authorization: Bearer <token>" on connect.
Stdout: "READY ws://host:port" once listening. Admin RPC: dev_newBlock {count, advanceSeconds}, dev_setStorage, dev_info.
`;

export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

function intArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new CliUsageError(`--${name} expects a non-negative integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Decimal TAO → rao, exact (no floating point). */
export function taoToRao(text: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (m === null) throw new CliUsageError(`not a TAO amount: ${JSON.stringify(text)}`);
  return BigInt(m[1] as string) * RAO_PER_TAO + BigInt((m[2] ?? '').padEnd(9, '0'));
}

export interface CliConfig {
  readonly help: boolean;
  readonly options: Parameters<typeof startDevnetNode>[0] & object;
}

/** Parses argv (without node and script) into node options. Throws {@link CliUsageError}. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliConfig {
  let values: ReturnType<typeof parse>['values'];
  function parse(args: readonly string[]) {
    return parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'block-time-ms': { type: 'string' },
        'data-file': { type: 'string' },
        endow: { type: 'string', multiple: true },
        register: { type: 'string', multiple: true },
        netuid: { type: 'string' },
        tempo: { type: 'string' },
        'weights-rate-limit': { type: 'string' },
        'burn-tao': { type: 'string' },
        'max-uids': { type: 'string' },
        'immunity-period': { type: 'string' },
        'commit-reveal': { type: 'boolean' },
        beacon: { type: 'string' },
        'beacon-seed': { type: 'string' },
        'finality-lag': { type: 'string' },
        'state-history': { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  }
  try {
    values = parse(argv).values;
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
  if (values.help === true) return { help: true, options: {} };
  const netuid = intArg(values.netuid, 'netuid', DEFAULT_NETUID);
  const endowments: Record<string, bigint> = {};
  for (const item of values.endow ?? []) {
    const eq = item.lastIndexOf('=');
    if (eq <= 0) throw new CliUsageError(`--endow expects <ss58>=<tao>, got ${JSON.stringify(item)}`);
    const address = item.slice(0, eq);
    endowments[address] = (endowments[address] ?? 0n) + taoToRao(item.slice(eq + 1));
  }
  const registrations: GenesisRegistration[] = (values.register ?? []).map((item) => {
    const parts = item.split(':');
    if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) throw new CliUsageError(`--register expects <hotkey>:<coldkey>[:<netuid>], got ${JSON.stringify(item)}`);
    return { hotkey: parts[0] as string, coldkey: parts[1] as string, netuid: parts[2] === undefined ? netuid : intArg(parts[2], 'register netuid', netuid) };
  });
  const beaconKind = values.beacon ?? 'local';
  if (beaconKind !== 'local' && beaconKind !== 'recorded-quicknet') throw new CliUsageError(`--beacon must be local or recorded-quicknet, got ${JSON.stringify(beaconKind)}`);
  const beacon: BeaconOptions = beaconKind === 'local' ? (values['beacon-seed'] === undefined ? { kind: 'local' } : { kind: 'local', seed: values['beacon-seed'] }) : { kind: 'recorded-quicknet' };
  const genesis: GenesisOptions = {
    subnets: [
      {
        netuid,
        tempo: intArg(values.tempo, 'tempo', DEFAULT_SUBNET.tempo),
        weightsSetRateLimit: intArg(values['weights-rate-limit'], 'weights-rate-limit', DEFAULT_SUBNET.weightsSetRateLimit),
        burnRao: values['burn-tao'] === undefined ? DEFAULT_SUBNET.burnRao : taoToRao(values['burn-tao']),
        maxAllowedUids: intArg(values['max-uids'], 'max-uids', DEFAULT_SUBNET.maxAllowedUids),
        immunityPeriod: intArg(values['immunity-period'], 'immunity-period', DEFAULT_SUBNET.immunityPeriod),
        commitRevealWeightsEnabled: values['commit-reveal'] === true,
      },
    ],
    endowments,
    registrations,
  };
  const token = env[TOKEN_ENV];
  return {
    help: false,
    options: {
      host: values.host ?? '127.0.0.1',
      port: intArg(values.port, 'port', 0),
      blockTimeMs: intArg(values['block-time-ms'], 'block-time-ms', DEFAULT_CLI_BLOCK_TIME_MS),
      ...(values['data-file'] === undefined ? {} : { dataFile: values['data-file'] }),
      ...(token === undefined || token === '' ? {} : { authToken: token }),
      finalityLag: intArg(values['finality-lag'], 'finality-lag', DEFAULT_FINALITY_LAG),
      stateHistory: intArg(values['state-history'], 'state-history', DEFAULT_STATE_HISTORY),
      beacon,
      genesis,
    },
  };
}

async function main(): Promise<void> {
  let config: CliConfig;
  try {
    config = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (config.help) {
    process.stdout.write(HELP);
    return;
  }
  const node = await startDevnetNode(config.options);
  process.stdout.write(`READY ${node.url}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[albedo-devnet] ${signal}: closing\n`);
    node.close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`[albedo-devnet] close failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`[albedo-devnet] failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
