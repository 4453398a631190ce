/**
 * Environment of the `albedo` miner CLI (spec/miner-cli.md §1): `.env` loading and the settings that a
 * flag or an environment variable may provide.
 *
 * `.env` rules: the package-root `.env` is read first, then `./.env` of the working directory (once if
 * both are the same file). Lines are `KEY=VALUE` with an optional `export ` prefix; blank lines and `#`
 * comments are skipped; a value in matching single or double quotes has them stripped; an unquoted
 * value loses a trailing ` # comment`. Values only fill variables that are not set yet, so the process
 * environment wins over both files and the first file wins over the second. Within one file a repeated
 * key takes its last value (python-dotenv behaviour). Example files (`.env.example`, …) are never read.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository / package root (this file lives in `<root>/miner/`). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A `.env` larger than this is not a settings file; it is skipped with a warning. */
export const MAX_DOTENV_BYTES = 1024 * 1024;

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface DotenvParseResult {
  /** Key → value, last occurrence in the file wins. */
  readonly values: Map<string, string>;
  /** 1-based line numbers that could not be parsed (contents are never echoed: they may be secrets). */
  readonly badLines: number[];
}

/** Parses one `.env` text. Pure. */
export function parseDotenv(text: string): DotenvParseResult {
  const values = new Map<string, string>();
  const badLines: number[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    const key = m?.[1];
    const rest = m?.[2];
    if (key === undefined || rest === undefined || !KEY_RE.test(key)) {
      badLines.push(index + 1);
      return;
    }
    const value = parseValue(rest);
    if (value === null) {
      badLines.push(index + 1);
      return;
    }
    values.set(key, value);
  });
  return { values, badLines };
}

/** The value part of a line: quoted (quotes stripped) or bare (trailing ` # comment` stripped). */
function parseValue(rest: string): string | null {
  const quote = rest[0];
  if (quote === '"' || quote === "'") {
    let out = '';
    for (let i = 1; i < rest.length; i++) {
      const c = rest[i] as string;
      if (c === quote) {
        const tail = rest.slice(i + 1).trim();
        // Only a comment may follow the closing quote.
        return tail === '' || tail.startsWith('#') ? out : null;
      }
      if (c === '\\' && quote === '"' && i + 1 < rest.length) {
        const next = rest[i + 1] as string;
        const escaped = next === 'n' ? '\n' : next === 't' ? '\t' : next === 'r' ? '\r' : next === '"' || next === '\\' ? next : null;
        if (escaped !== null) {
          out += escaped;
          i++;
          continue;
        }
      }
      out += c;
    }
    return null; // unterminated quote (multi-line values are not supported)
  }
  return rest.replace(/(^|\s)#.*$/, '').trim();
}

/** The files read at startup, in precedence order: package root first, then the working directory. */
export function defaultDotenvFiles(cwd: string = process.cwd()): string[] {
  const files = [path.join(PACKAGE_ROOT, '.env'), path.resolve(cwd, '.env')];
  return files.filter((f, i) => files.indexOf(f) === i);
}

export interface DotenvLoadResult {
  /** Files that existed and were read. */
  readonly loaded: string[];
  /** Keys that were set from a file (not their values). */
  readonly applied: string[];
  /** Human warnings (unparseable line numbers, unreadable files); never contain values. */
  readonly warnings: string[];
}

/**
 * Loads `files` in order into `env`, filling only keys that are still `undefined` there (process env
 * wins; an earlier file wins over a later one). A missing file is skipped silently.
 */
export function loadDotenvFiles(files: readonly string[], env: NodeJS.ProcessEnv = process.env): DotenvLoadResult {
  const loaded: string[] = [];
  const applied: string[] = [];
  const warnings: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      const buf = readFileSync(file);
      if (buf.length > MAX_DOTENV_BYTES) {
        warnings.push(`${file} is larger than ${MAX_DOTENV_BYTES} bytes; not loaded`);
        continue;
      }
      text = buf.toString('utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') warnings.push(`cannot read ${file} (${code ?? 'error'}); not loaded`);
      continue;
    }
    loaded.push(file);
    const { values, badLines } = parseDotenv(text);
    if (badLines.length > 0) warnings.push(`${file}: ignored unparseable line${badLines.length > 1 ? 's' : ''} ${badLines.join(', ')}`);
    for (const [key, value] of values) {
      if (env[key] !== undefined) continue;
      env[key] = value;
      applied.push(key);
    }
  }
  return { loaded, applied, warnings };
}

// ── settings: flag > environment > default ─────────────────────────────────────────────────────

/** One command-line flag. The help text is generated from these, so it cannot drift from the code. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** Placeholder in help, e.g. `<name>` (string flags). */
  readonly placeholder?: string;
  readonly description: string;
  /** Environment variable used when the flag is absent. */
  readonly env?: string;
  /** Value used when neither the flag nor the environment variable is given (shown in help). */
  readonly default?: string;
  /** Must be given (by flag or env). Shown in help; enforced by {@link requireSetting}. */
  readonly required?: boolean;
}

/** Raised for command-line misuse: the CLI prints `error: <message>` plus usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Raised for an invalid setting value (from a flag or the environment): exit 1. */
export class SettingError extends Error {
  override readonly name = 'SettingError';
}

export const NETUID_ENV = 'CHAIN_NETUID';
export const NETWORK_ENV = 'CHAIN_NETWORK';
export const COLDKEY_ENV = 'ALBEDO_COLDKEY';
export const HOTKEY_ENV = 'ALBEDO_HOTKEY';
/** Bearer token sent to the chain endpoint (the local dev chain requires one). Never printed. */
export const CHAIN_TOKEN_ENV = 'ALBEDO_CHAIN_TOKEN';

/**
 * Copies of constants of chain/provider.ts and chain/wallet.ts, which load @polkadot/api and the keyring
 * (seconds): help and argument errors must not wait for them. miner/cli.test.ts asserts they are equal.
 */
export const NETWORK_PRESET_NAMES = ['finney', 'test', 'local', 'archive'] as const;
export const WALLET_PATH_ENV = 'ALBEDO_WALLET_PATH';
export const DEFAULT_WALLET_PATH = '~/.bittensor/wallets';
export const BT_PW_ENV_PREFIX = 'BT_PW_';

export const COMMON_FLAGS = {
  coldkey: { type: 'string', placeholder: '<name>', description: 'wallet (coldkey) name', env: COLDKEY_ENV, required: true },
  hotkey: { type: 'string', placeholder: '<name>', description: 'hotkey name inside the wallet', env: HOTKEY_ENV, required: true },
  netuid: { type: 'string', placeholder: '<n>', description: 'subnet id', env: NETUID_ENV, default: '97' },
  network: { type: 'string', placeholder: '<net>', description: `${NETWORK_PRESET_NAMES.join(', ')} or a ws(s):// URL`, env: NETWORK_ENV, default: 'finney' },
  yes: { type: 'boolean', description: 'do not ask for confirmation' },
} as const satisfies Record<string, FlagSpec>;

type Env = Readonly<Record<string, string | undefined>>;

/** Where a resolved setting came from (for error messages). */
export interface Setting {
  readonly value: string;
  /** `--flag`, the env var name, or `default`. */
  readonly source: string;
}

/** Flag value, else the non-empty env var, else the default; `null` when none applies. */
export function resolveSetting(name: string, spec: FlagSpec, given: string | undefined, env: Env): Setting | null {
  if (given !== undefined) return { value: given, source: `--${name}` };
  const fromEnv = spec.env ? env[spec.env] : undefined;
  if (spec.env && fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv.trim(), source: spec.env };
  if (spec.default !== undefined) return { value: spec.default, source: 'default' };
  return null;
}

/** Like {@link resolveSetting} but a missing value is a usage error naming the flag and its env var. */
export function requireSetting(name: string, spec: FlagSpec, given: string | undefined, env: Env): Setting {
  const s = resolveSetting(name, spec, given, env);
  if (s === null || s.value === '') throw new UsageError(`--${name} is required${spec.env ? ` (or set ${spec.env})` : ''}`);
  return s;
}

/** A subnet id: a decimal integer 0..65535. */
export function parseNetuid(s: Setting): number {
  if (!/^\d{1,5}$/.test(s.value) || Number(s.value) > 0xffff) {
    throw new SettingError(`${s.source === 'default' ? 'netuid' : s.source} must be an integer 0..65535 (got ${JSON.stringify(s.value.slice(0, 40))})`);
  }
  return Number(s.value);
}

/** Extra WS headers for the chain endpoint: `Authorization: Bearer <ALBEDO_CHAIN_TOKEN>` when set. */
export function chainHeaders(env: Env): Record<string, string> | undefined {
  const token = env[CHAIN_TOKEN_ENV]?.trim();
  return token ? { Authorization: `Bearer ${token}` } : undefined;
}

// ── the chain target and the wallet root ───────────────────────────────────────────────────────

/** Netuid and network of a command, validated without any network access. */
export interface ChainTarget {
  readonly netuid: number;
  /** The network as configured (preset name or URL), passed to `connectSubtensor`. */
  readonly network: string;
  /** Printable: the preset name, or the URL with credentials redacted. */
  readonly label: string;
}

export async function resolveChainTarget(flags: { netuid?: string | undefined; network?: string | undefined }, env: Env): Promise<ChainTarget> {
  const netuid = parseNetuid(requireSetting('netuid', COMMON_FLAGS.netuid, flags.netuid, env));
  const network = requireSetting('network', COMMON_FLAGS.network, flags.network, env).value;
  const { ChainConfigError, NETWORK_PRESETS, redactEndpoint, resolveEndpoint } = await import('../chain/provider.ts');
  if (Object.hasOwn(NETWORK_PRESETS, network)) return { netuid, network, label: network };
  // ChainConfigError for anything but a ws(s):// URL. (resolveEndpoint looks presets up with a plain
  // index, so inherited names like "constructor" would slip through as non-strings: refuse those here.)
  const endpoint: unknown = resolveEndpoint(network);
  if (typeof endpoint !== 'string') throw new ChainConfigError(`${NETWORK_ENV} must be one of ${NETWORK_PRESET_NAMES.join(', ')} or a ws:// / wss:// URL`);
  return { netuid, network, label: redactEndpoint(endpoint) };
}

/** Environment variables shared by the wallet commands (documented in their help). */
export const WALLET_ENV_HELP: ReadonlyArray<readonly [string, string]> = [
  [WALLET_PATH_ENV, `wallet root (default ${DEFAULT_WALLET_PATH})`],
  [`${BT_PW_ENV_PREFIX}<keyfile path>`, 'coldkey password for encrypted coldkeys (btcli encoding; else prompted)'],
];

/** Environment variables shared by every chain command. */
export const CHAIN_ENV_HELP: ReadonlyArray<readonly [string, string]> = [[CHAIN_TOKEN_ENV, 'bearer token sent to the chain endpoint (never printed)']];
