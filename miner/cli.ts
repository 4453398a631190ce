/**
 * `albedo`, the miner CLI (spec/miner-cli.md): entry point, argument parsing, help and dispatch.
 *
 * A subcommand is one file in `miner/commands/` exporting a {@link CommandSpec} plus one line in
 * {@link COMMANDS}. Its flags are declared once in the spec; parsing (`util.parseArgs`, strict) and the
 * help text are both generated from that declaration, so the help cannot drift from the code.
 *
 * Exit codes (spec §2): 0 ok; 1 any failure (`error: <message>` on stderr, never a stack trace); 2 usage
 * error; 130 Ctrl-C (`aborted.`). Results go to stdout, progress to stderr; secrets never appear.
 *
 * Nothing here imports @polkadot/api or the wallet code statically (seconds of load time): commands
 * import them when they run, so `--help` and argument errors answer at once.
 */
import { parseArgs } from 'node:util';
import type { Subtensor } from '../chain/subtensor.ts';
import { checkCommitCommand } from './commands/check-commit.ts';
import { checkModelCommand } from './commands/check-model.ts';
import { commitCommand } from './commands/commit.ts';
import { evalSetCommand } from './commands/eval-set.ts';
import { fingerprintCommand } from './commands/fingerprint.ts';
import { registerCommand } from './commands/register.ts';
import { verifyCommand } from './commands/verify.ts';
import { CHAIN_TOKEN_ENV, type ChainTarget, chainHeaders, defaultDotenvFiles, type FlagSpec, loadDotenvFiles, PACKAGE_ROOT, SettingError, UsageError } from './env.ts';
import { confirm, InterruptedError, NonInteractiveError, type PromptInput } from './prompt.ts';

// ── the command table ───────────────────────────────────────────────────────────────────────────

/** Parsed flag values of one invocation (only flags the command declared). */
export interface Flags {
  /** A string flag's value, or undefined when absent. */
  string(name: string): string | undefined;
  /** A boolean flag: true when given. */
  boolean(name: string): boolean;
  /** A string flag that must be given (no env fallback): a usage error otherwise. */
  required(name: string): string;
  /** The positional arguments (only commands declaring `positionals` accept any). */
  readonly positionals: readonly string[];
}

/** What a command may use; everything process-wide goes through here (testable, closable). */
export interface CommandContext {
  /** The environment after `.env` loading. */
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: PromptInput;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
  /** A result line on stdout. */
  out(line: string): void;
  /** A progress line on stderr. */
  status(line: string): void;
  /** `Proceed? [y/N]`; rejects when stdin is not a terminal. */
  confirm(): Promise<boolean>;
  /** Connects to the chain (bearer token from `ALBEDO_CHAIN_TOKEN`); closed by the CLI when the command ends. */
  connect(target: ChainTarget): Promise<Subtensor>;
}

export interface CommandSpec {
  readonly name: string;
  /** Other names that run this command (e.g. upstream's `check-hippius`). */
  readonly aliases?: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** Usage after `albedo <name> `. */
  readonly synopsis: string;
  /** Paragraph(s) for `albedo <name> --help`. */
  readonly description: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** How many positional arguments the command takes ([min, max]); none when absent. */
  readonly positionals?: readonly [number, number];
  /** Environment variables the command reads besides its flags' fallbacks: [name, description]. */
  readonly env?: ReadonlyArray<readonly [string, string]>;
  /** Resolves the exit code; throws for failures (mapped to exit 1) and {@link UsageError} (exit 2). */
  run(ctx: CommandContext, flags: Flags): Promise<number>;
}

/** Every subcommand: add a file in miner/commands/ and one line here. */
export const COMMANDS: readonly CommandSpec[] = [checkModelCommand, fingerprintCommand, registerCommand, commitCommand, checkCommitCommand, evalSetCommand, verifyCommand];

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

// ── help ────────────────────────────────────────────────────────────────────────────────────────

function table(rows: ReadonlyArray<readonly [string, string]>, indent = '  '): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}  ${right}`.trimEnd());
}

export function rootUsage(): string {
  return 'usage: albedo <command> [flags]';
}

export function rootHelp(): string {
  return [
    'albedo — miner CLI for the albedo subnet (Bittensor)',
    '',
    rootUsage(),
    '',
    'commands:',
    ...table(COMMANDS.map((c) => [c.name, c.summary])),
    '',
    'Run "albedo <command> --help" for its flags.',
    '',
    `Settings come from flags, then the environment, then defaults. At startup ${PACKAGE_ROOT}/.env and then`,
    './.env are loaded; they only fill variables that are not set (the process environment wins).',
    'Exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted (Ctrl-C).',
  ].join('\n');
}

export function commandUsage(cmd: CommandSpec): string {
  return `usage: albedo ${cmd.name} ${cmd.synopsis}`;
}

function flagLeft(name: string, spec: FlagSpec): string {
  return spec.type === 'string' ? `--${name} ${spec.placeholder ?? '<value>'}` : `--${name}`;
}

function flagRight(spec: FlagSpec): string {
  const notes: string[] = [];
  if (spec.required) notes.push(spec.env ? `required unless ${spec.env} is set` : 'required');
  else if (spec.env) notes.push(`env ${spec.env}`);
  if (spec.default !== undefined) notes.push(`default ${spec.default}`);
  return notes.length > 0 ? `${spec.description} (${notes.join(', ')})` : spec.description;
}

export function commandHelp(cmd: CommandSpec): string {
  const flags = Object.entries(cmd.flags).map(([name, spec]) => [flagLeft(name, spec), flagRight(spec)] as const);
  const lines = [commandUsage(cmd), '', cmd.summary, '', cmd.description, '', 'flags:', ...table([...flags, ['-h, --help', 'show this help']])];
  if (cmd.env && cmd.env.length > 0) lines.push('', 'environment:', ...table(cmd.env));
  return lines.join('\n');
}

// ── parsing ─────────────────────────────────────────────────────────────────────────────────────

/** Node's parseArgs messages, shortened; anything unrecognised is passed through. */
function parseErrorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const m = /Unknown option '([^']+)'/.exec(message);
    return `unknown flag ${m?.[1] ?? ''}`.trim();
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const m = /Unexpected argument '([^']*)'/.exec(message);
    return m ? `unexpected argument ${JSON.stringify(m[1])}` : message;
  }
  return message;
}

function makeFlags(cmd: CommandSpec, values: Record<string, string | boolean | undefined>, positionals: readonly string[] = []): Flags {
  const declared = (name: string, type: FlagSpec['type']) => {
    const spec = cmd.flags[name];
    if (!spec || spec.type !== type) throw new Error(`internal: ${cmd.name} reads undeclared ${type} flag --${name}`);
  };
  return {
    positionals,
    string(name) {
      declared(name, 'string');
      const v = values[name];
      return typeof v === 'string' ? v : undefined;
    },
    boolean(name) {
      declared(name, 'boolean');
      return values[name] === true;
    },
    required(name) {
      declared(name, 'string');
      const v = values[name];
      if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
      return v;
    },
  };
}

export type ParsedInvocation =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'usage'; readonly message: string; readonly usage: string; readonly hint: string }
  | { readonly kind: 'run'; readonly command: CommandSpec; readonly flags: Flags };

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name || (c.aliases?.includes(name) ?? false));
}

/** argv (without `node` and the script) → what to do. Pure. */
export function parseInvocation(argv: readonly string[]): ParsedInvocation {
  const [first, ...rest] = argv;
  const rootHint = 'run "albedo --help" for the commands';
  if (first === undefined || first === '--help' || first === '-h') return { kind: 'help', text: rootHelp() };
  if (first === 'help') {
    const target = rest[0];
    if (target === undefined) return { kind: 'help', text: rootHelp() };
    const cmd = findCommand(target);
    return cmd ? { kind: 'help', text: commandHelp(cmd) } : { kind: 'usage', message: `unknown command ${JSON.stringify(target)}`, usage: rootUsage(), hint: rootHint };
  }
  if (first.startsWith('-')) return { kind: 'usage', message: `unknown flag ${first} (flags go after the command)`, usage: rootUsage(), hint: rootHint };
  const cmd = findCommand(first);
  if (!cmd) return { kind: 'usage', message: `unknown command ${JSON.stringify(first)}`, usage: rootUsage(), hint: rootHint };
  const hint = `run "albedo ${cmd.name} --help" for its flags`;
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of Object.entries(cmd.flags)) options[name] = { type: spec.type };
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...rest], options, strict: true, allowPositionals: cmd.positionals !== undefined }));
  } catch (error) {
    // `--help` anywhere wins over other mistakes on the line.
    if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', text: commandHelp(cmd) };
    return { kind: 'usage', message: parseErrorMessage(error), usage: commandUsage(cmd), hint };
  }
  if (values.help === true) return { kind: 'help', text: commandHelp(cmd) };
  const [min, max] = cmd.positionals ?? [0, 0];
  if (positionals.length < min) return { kind: 'usage', message: `missing argument: ${cmd.synopsis.split(' ')[0]}`, usage: commandUsage(cmd), hint };
  if (positionals.length > max) return { kind: 'usage', message: `unexpected argument ${JSON.stringify(positionals[max])}`, usage: commandUsage(cmd), hint };
  return { kind: 'run', command: cmd, flags: makeFlags(cmd, values, positionals) };
}

// ── running ─────────────────────────────────────────────────────────────────────────────────────

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: PromptInput;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly signal?: AbortSignal;
  /** Injectable for tests; defaults to `connectSubtensor`. */
  readonly connect?: (options: { network: string; headers?: Record<string, string> }) => Promise<Subtensor>;
}

/** Removes values that must never be printed (the chain token, the backend reader token) from a message. */
export function scrubSecrets(message: string, env: Readonly<Record<string, string | undefined>>): string {
  let out = message;
  for (const name of [CHAIN_TOKEN_ENV, 'ALBEDO_READER_TOKEN']) {
    const token = env[name]?.trim();
    if (token && token.length >= 4) out = out.split(token).join('***');
  }
  return out;
}

/**
 * Errors whose messages are written for users (closed-code errors of chain/ and miner/): printed whole.
 * Matched by `name` (each class sets it) so this module need not load the chain code to recognise them.
 */
/** The chain endpoint could not be reached (or refused us, e.g. a wrong token). */
export class ChainConnectError extends Error {
  override readonly name = 'ChainConnectError';
}

/** `message` of anything thrown: Errors, and error-like objects (a WebSocket `ErrorEvent` is not an Error). */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string' && error.message) return error.message;
  return String(error);
}

export const USER_FACING_ERRORS: ReadonlySet<string> = new Set([
  ChainConnectError.name,
  'WalletError', // chain/wallet.ts
  'MinerOpError', // chain/miner-ops.ts
  'ChainConfigError', // chain/provider.ts
  'TimelockError', // chain/timelock.ts
  'ExtrinsicError', // chain/extrinsics.ts
  SettingError.name,
  NonInteractiveError.name,
  'FingerprintError', // validation/fingerprint.ts
  'ModelStoreError', // validation/model-store.ts
  'AlbedoError', // core/faults.ts (CONFIG: an invalid ALBEDO_* setting)
]);

/** A thrown value → exit code and the stderr line. Never a stack trace. */
export function describeFailure(error: unknown): { code: number; message: string } {
  if (error instanceof InterruptedError) return { code: EXIT_INTERRUPTED, message: 'aborted.' };
  if (error instanceof UsageError) return { code: EXIT_USAGE, message: `error: ${error.message}` };
  if (error instanceof Error && USER_FACING_ERRORS.has(error.name)) return { code: EXIT_FAILURE, message: `error: ${error.message}` };
  // Anything else (library errors, bugs): its first line only — library messages can be long dumps.
  return { code: EXIT_FAILURE, message: `error: ${messageOf(error).split('\n')[0]}` };
}

/** Runs one invocation and resolves its exit code. Does not touch process-wide state. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const write = (stream: NodeJS.WritableStream, text: string) => stream.write(`${scrubSecrets(text, io.env)}\n`);
  const parsed = parseInvocation(argv);
  if (parsed.kind === 'help') {
    write(io.stdout, parsed.text);
    return EXIT_OK;
  }
  if (parsed.kind === 'usage') {
    write(io.stderr, `error: ${parsed.message}\n${parsed.usage}\n${parsed.hint}`);
    return EXIT_USAGE;
  }
  const { command, flags } = parsed;
  const chains: Subtensor[] = [];
  const connect = io.connect ?? (async (options) => (await import('../chain/subtensor.ts')).connectSubtensor(options));
  const ctx: CommandContext = {
    env: io.env,
    stdin: io.stdin,
    signal: io.signal ?? new AbortController().signal,
    out: (line) => write(io.stdout, line),
    status: (line) => write(io.stderr, line),
    confirm: () => confirm(undefined, { input: io.stdin, output: io.stderr }),
    async connect(target) {
      write(io.stderr, `connecting to ${target.label}…`);
      const headers = chainHeaders(io.env);
      let chain: Subtensor;
      try {
        chain = await connect({ network: target.network, ...(headers ? { headers } : {}) });
      } catch (error) {
        if (error instanceof Error && USER_FACING_ERRORS.has(error.name)) throw error; // e.g. ChainConfigError: connect timeout
        // The raw URL may carry credentials: only the redacted label is printed.
        throw new ChainConnectError(`cannot connect to ${target.label}: ${messageOf(error).split(target.network).join(target.label)}`);
      }
      chains.push(chain);
      return chain;
    },
  };
  try {
    return await command.run(ctx, flags);
  } catch (error) {
    const failure = describeFailure(error);
    write(io.stderr, failure.message);
    if (failure.code === EXIT_USAGE) write(io.stderr, `${commandUsage(command)}\nrun "albedo ${command.name} --help" for its flags`);
    return failure.code;
  } finally {
    await Promise.all(chains.map((c) => c.close()));
  }
}

/**
 * Process entry (bin/albedo.mjs): loads `.env`, installs the Ctrl-C and last-resort handlers, runs, and
 * exits with the command's code. Library log output (polkadot.js writes to `console`) is dropped unless
 * `ALBEDO_DEBUG=1`, so stdout and stderr carry only the CLI's own lines.
 */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const exit = (code: number): void => {
    // Exit explicitly (polkadot.js may leave handles open) once stdout has taken our last line.
    process.exitCode = code;
    process.stdout.write('', () => process.exit(code));
    setTimeout(() => process.exit(code), 1_000).unref();
  };
  const fail = (error: unknown) => {
    const failure = describeFailure(error);
    process.stderr.write(`${scrubSecrets(failure.message, process.env)}\n`);
    exit(failure.code);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  const controller = new AbortController();
  process.on('SIGINT', () => {
    controller.abort();
    process.stderr.write('\naborted.\n');
    process.exit(EXIT_INTERRUPTED);
  });
  const dotenv = loadDotenvFiles(defaultDotenvFiles(process.cwd()), process.env);
  for (const warning of dotenv.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (process.env.ALBEDO_DEBUG !== '1') {
    const drop = () => undefined;
    console.log = drop;
    console.info = drop;
    console.warn = drop;
    console.error = drop;
    console.debug = drop;
  }
  const code = await runCli(argv, { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
  exit(code);
}
