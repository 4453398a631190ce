import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { AlbedoError } from './faults.ts';

/** Defaults of the backend's settings (spec/config.md names where the spec has one). */
export const CONFIG_DEFAULTS = {
  ALBEDO_DATA_DIR: join(homedir(), '.albedo'),
  ALBEDO_API_HOST: '127.0.0.1',
  ALBEDO_API_PORT: 8080,
  CHAIN_NETUID: 97,
  CHAIN_NETWORK: 'finney',
  CHAIN_POLL_INTERVAL_S: 2,
  CHAIN_SCAN_LAG_BLOCKS: 3,
  CHAIN_START_BLOCK: 0,
  CHAIN_BLOCK_HASH_CACHE: 10_000,
  ALBEDO_BACKOFF_SCALE: 1,
  ALBEDO_SWEEP_INTERVAL_S: 60,
  ALBEDO_HV_CONCURRENCY: 2,
  ALBEDO_EVAL_MAX_CONCURRENT: 1,
  ALBEDO_ACTOR_LEASE_S: 30,
  ALBEDO_WRITER_LANES: 2,
  ALBEDO_DB_POOL_SIZE: 8,
} as const;

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .default('0')
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
const token = z.string().min(16, 'tokens must be at least 16 characters').max(512);

const schema = z.object({
  DATABASE_URL: z.string().url().optional(),
  ALBEDO_EVAL_DATABASE_URL: z.string().url().optional(),
  ALBEDO_DATA_DIR: z.string().min(1).default(CONFIG_DEFAULTS.ALBEDO_DATA_DIR),
  ALBEDO_API_HOST: z.string().min(1).default(CONFIG_DEFAULTS.ALBEDO_API_HOST),
  ALBEDO_API_PORT: z.coerce.number().int().min(0).max(65535).default(CONFIG_DEFAULTS.ALBEDO_API_PORT),
  ALBEDO_API_PUBLIC: bool,
  ALBEDO_INSECURE_DEV: bool,
  ALBEDO_OPERATOR_TOKEN: token.optional(),
  ALBEDO_READER_TOKEN: token.optional(),
  /** Token of the backend's own stage-service link; random per process when unset (internal only). */
  ALBEDO_BACKEND_TOKEN: token.optional(),
  /** JSON object `{ "<node id>": "<token>" }`: one token per GPU node, so a node cannot pose as another. */
  ALBEDO_NODE_TOKENS: z.string().max(65536).optional(),
  ALBEDO_NODE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default(hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'albedo'),
  CHAIN_NETUID: z.coerce.number().int().min(0).max(65535).default(CONFIG_DEFAULTS.CHAIN_NETUID),
  /** `finney`, `test`, `archive`, `local` or a `ws(s)://` URL (checked by chain/provider.ts at connect). */
  CHAIN_NETWORK: z.string().min(1).max(2048).default(CONFIG_DEFAULTS.CHAIN_NETWORK),
  /** Bearer token sent on the chain WebSocket upgrade (the local dev chain requires one; public nodes ignore it). */
  ALBEDO_CHAIN_TOKEN: token.optional(),
  CHAIN_POLL_INTERVAL_S: z.coerce.number().positive().max(3600).default(CONFIG_DEFAULTS.CHAIN_POLL_INTERVAL_S),
  CHAIN_SCAN_LAG_BLOCKS: z.coerce.number().int().min(0).max(1000).default(CONFIG_DEFAULTS.CHAIN_SCAN_LAG_BLOCKS),
  CHAIN_START_BLOCK: z.coerce.number().int().min(0).default(CONFIG_DEFAULTS.CHAIN_START_BLOCK),
  /** Default (spec/config.md): `CHAIN_START_BLOCK − 1` when the start block is set, else 0 (off). */
  IGNORE_COMMITS_TO_BLOCK: z.coerce.number().int().min(0).optional(),
  CHAIN_READ_RAW_COMMITMENTS: bool,
  CHAIN_BLOCK_HASH_CACHE: z.coerce.number().int().min(16).max(10_000_000).default(CONFIG_DEFAULTS.CHAIN_BLOCK_HASH_CACHE),
  /** Validator wallet (weight setter): wallet name, hotkey name, wallet root. */
  ALBEDO_WEIGHT_COLDKEY: z.string().min(1).max(255).optional(),
  ALBEDO_WEIGHT_HOTKEY: z.string().min(1).max(255).optional(),
  ALBEDO_WEIGHT_WALLET_PATH: z.string().min(1).optional(),
  ALBEDO_BACKOFF_SCALE: z.coerce.number().positive().max(1000).default(CONFIG_DEFAULTS.ALBEDO_BACKOFF_SCALE),
  ALBEDO_SWEEP_INTERVAL_S: z.coerce.number().positive().max(3600).default(CONFIG_DEFAULTS.ALBEDO_SWEEP_INTERVAL_S),
  ALBEDO_HV_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(CONFIG_DEFAULTS.ALBEDO_HV_CONCURRENCY),
  /** Spec §4.4/§8: one active eval globally (the next duel must face a settled king), enforced by a unique index. */
  ALBEDO_EVAL_MAX_CONCURRENT: z.coerce.number().int().min(0).max(1, 'at most one eval can be active (spec §4.4); 0 pauses duels').default(CONFIG_DEFAULTS.ALBEDO_EVAL_MAX_CONCURRENT),
  ALBEDO_ACTOR_LEASE_S: z.coerce.number().positive().max(3600).default(CONFIG_DEFAULTS.ALBEDO_ACTOR_LEASE_S),
  ALBEDO_WRITER_LANES: z.coerce.number().int().min(1).max(32).default(CONFIG_DEFAULTS.ALBEDO_WRITER_LANES),
  ALBEDO_DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(CONFIG_DEFAULTS.ALBEDO_DB_POOL_SIZE),
  ALBEDO_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type BackendConfig = Omit<z.infer<typeof schema>, 'IGNORE_COMMITS_TO_BLOCK'> & { readonly IGNORE_COMMITS_TO_BLOCK: number; readonly databaseUrl: string | null; readonly nodeTokens: Record<string, string> };

/**
 * Parses the environment once at start. An invalid value stops the service with the variable's
 * name (spec/config.md); values are never echoed, since some are secrets.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BackendConfig {
  const picked = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new AlbedoError('CONFIG', `invalid configuration: ${String(first?.path[0] ?? '?')}: ${first?.message ?? 'invalid'}`);
  }
  let nodeTokens: Record<string, string> = {};
  if (parsed.data.ALBEDO_NODE_TOKENS) {
    const nodes = z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), token).safeParse(safeJson(parsed.data.ALBEDO_NODE_TOKENS));
    if (!nodes.success) throw new AlbedoError('CONFIG', 'invalid configuration: ALBEDO_NODE_TOKENS must be a JSON object {"<node id>": "<token of ≥16 chars>"}');
    nodeTokens = nodes.data;
  }
  const ignoreTo = parsed.data.IGNORE_COMMITS_TO_BLOCK ?? (parsed.data.CHAIN_START_BLOCK > 0 ? parsed.data.CHAIN_START_BLOCK - 1 : 0);
  const cfg = { ...parsed.data, IGNORE_COMMITS_TO_BLOCK: ignoreTo, databaseUrl: parsed.data.DATABASE_URL ?? parsed.data.ALBEDO_EVAL_DATABASE_URL ?? null, nodeTokens };
  if (!cfg.ALBEDO_OPERATOR_TOKEN && !cfg.ALBEDO_INSECURE_DEV) {
    throw new AlbedoError('CONFIG', 'invalid configuration: ALBEDO_OPERATOR_TOKEN is required (or ALBEDO_INSECURE_DEV=1 for a dev stack)');
  }
  return cfg;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
