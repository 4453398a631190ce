/**
 * Runs one OpenAI-compatible inference engine (vLLM in production, the local stand-in in dev/tests)
 * as a child process in its own process group, waits until it serves `/v1/models`, talks to it, and
 * stops exactly the group it started. All engine failures surface as INFRA faults ({@link EngineFault}).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { stageFault } from '../core/faults.ts';
import { EngineFault, type ChatFn, type CompletionFn } from './engine.ts';
import { createOpenAiChat, createOpenAiCompletion } from './openai-chat.ts';
import { processGroupAlive, signalProcessGroup } from './process-group.ts';

/** Interface the engine binds and we connect to. @default '127.0.0.1' */
export const DEFAULT_ENGINE_HOST = '127.0.0.1';
/** Boot deadline (`ALBEDO_PREEVAL_VLLM_STARTUP_S`, duel.md §4.1 "up to 1200 s"). @default 1_200_000 */
export const DEFAULT_STARTUP_TIMEOUT_MS = 1_200_000;
/** Interval between readiness probes. @default 2_000 */
export const DEFAULT_READINESS_POLL_INTERVAL_MS = 2_000;
/** Timeout of one readiness probe. @default 5_000 */
export const DEFAULT_READINESS_PROBE_TIMEOUT_MS = 5_000;
/** Time between SIGTERM and SIGKILL of the process group. @default 10_000 */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** Per-request generation timeout (pre-eval read timeout, preeval.md §3 step 5). @default 300_000 */
export const DEFAULT_GENERATION_TIMEOUT_MS = 300_000;
/** Environment variable carrying the API key to the child (vLLM reads `VLLM_API_KEY`). @default 'VLLM_API_KEY' */
export const DEFAULT_API_KEY_ENV = 'VLLM_API_KEY';
/** Bytes of child stdout/stderr kept for boot-failure messages. @default 4_096 */
export const DEFAULT_OUTPUT_TAIL_BYTES = 4_096;
/** Inherited environment variables whose names match this are NOT passed to the engine (it runs miner weights). */
export const SECRET_ENV_PATTERN = /(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)/i;

export interface EngineCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Extra environment for the child (e.g. `CUDA_VISIBLE_DEVICES`). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface EngineLaunchContext {
  readonly host: string;
  readonly port: number;
  /** Name of the env var holding the API key, or null when no key is configured. */
  readonly apiKeyEnv: string | null;
}

export interface VllmManagerOptions {
  /** Builds the command line once host/port are known. See {@link vllmCommand} and {@link stubVllmCommand}. */
  readonly command: (ctx: EngineLaunchContext) => EngineCommand;
  /** @default DEFAULT_ENGINE_HOST */
  readonly host?: string;
  /** @default a free ephemeral port chosen at start */
  readonly port?: number;
  /** Bearer token the engine requires; passed via env, never argv. @default none */
  readonly apiKey?: string;
  /** @default DEFAULT_API_KEY_ENV */
  readonly apiKeyEnv?: string;
  /** @default DEFAULT_STARTUP_TIMEOUT_MS */
  readonly startupTimeoutMs?: number;
  /** @default DEFAULT_READINESS_POLL_INTERVAL_MS */
  readonly pollIntervalMs?: number;
  /** @default DEFAULT_STOP_GRACE_MS */
  readonly stopGraceMs?: number;
  /** @default DEFAULT_GENERATION_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** Base environment; entries matching {@link SECRET_ENV_PATTERN} are dropped. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** Production command (duel.md §4.1 / preeval.md §3). Never passes `--trust-remote-code`. */
export function vllmCommand(opts: {
  /** @default 'python3' (`ALBEDO_REMOTE_VLLM_PYTHON`) */
  python?: string;
  modelDir: string;
  servedModelName: string;
  /** @default 1 */
  tensorParallelSize?: number;
  /** @default 8192 (pre-eval); the duel uses 262144 */
  maxModelLen?: number;
  /** @default 0.95 */
  gpuMemoryUtilization?: number;
  /** Comma-separated GPU ids for `CUDA_VISIBLE_DEVICES`. @default inherit */
  cudaVisibleDevices?: string;
  enforceEager?: boolean;
  extraArgs?: readonly string[];
}): (ctx: EngineLaunchContext) => EngineCommand {
  return (ctx) => ({
    command: opts.python ?? 'python3',
    args: [
      '-m', 'vllm.entrypoints.openai.api_server',
      '--model', opts.modelDir,
      '--served-model-name', opts.servedModelName,
      '--host', ctx.host,
      '--port', String(ctx.port),
      '--tensor-parallel-size', String(opts.tensorParallelSize ?? 1),
      '--generation-config', 'vllm',
      '--gpu-memory-utilization', String(opts.gpuMemoryUtilization ?? 0.95),
      '--kv-cache-dtype', 'auto',
      '--max-model-len', String(opts.maxModelLen ?? 8192),
      '--limit-mm-per-prompt', '{"image": 0, "video": 0}',
      ...(opts.enforceEager ? ['--enforce-eager'] : []),
      ...(opts.extraArgs ?? []),
    ],
    ...(opts.cudaVisibleDevices !== undefined ? { env: { CUDA_VISIBLE_DEVICES: opts.cudaVisibleDevices } } : {}),
  });
}

/** Path of the stand-in CLI, resolved relative to this module so it works from any cwd. */
export const STUB_VLLM_MAIN_PATH = fileURLToPath(new URL('./stub-vllm-main.ts', import.meta.url));

/** tsx's loader as an absolute URL: a bare `--import tsx` would resolve against the child's cwd. */
const TSX_LOADER_URL = import.meta.resolve('tsx');

/** Local command: the LOCAL vLLM STAND-IN under the current Node with tsx. */
export function stubVllmCommand(opts: { models: readonly string[]; latencyMs?: number }): (ctx: EngineLaunchContext) => EngineCommand {
  return (ctx) => ({
    command: process.execPath,
    args: [
      '--import', TSX_LOADER_URL, STUB_VLLM_MAIN_PATH,
      '--models', opts.models.join(','),
      '--host', ctx.host,
      '--port', String(ctx.port),
      ...(opts.latencyMs ? ['--latency-ms', String(opts.latencyMs)] : []),
      ...(ctx.apiKeyEnv ? ['--api-key-env', ctx.apiKeyEnv] : []),
    ],
  });
}

async function findFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

export class VllmManager {
  private readonly host: string;
  private readonly opts: VllmManagerOptions;
  private child: ChildProcess | null = null;
  private exit: ExitInfo | null = null;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  /** Resolves when the child's stdio closed (its last output has been captured). */
  private closed: Promise<void> = Promise.resolve();
  private url: string | null = null;
  private outputTail = '';
  private stopping: Promise<void> | null = null;

  /** OpenAI-compatible chat completion (a {@link ChatFn}); every failure is an INFRA {@link EngineFault}. */
  readonly chat: ChatFn;
  /** Raw-prompt completion (`/v1/completions`, a {@link CompletionFn}); same failure classes as {@link chat}. */
  readonly complete: CompletionFn;

  constructor(options: VllmManagerOptions) {
    this.opts = options;
    this.host = options.host ?? DEFAULT_ENGINE_HOST;
    const engineOptions = {
      baseUrl: () => this.baseUrl,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_GENERATION_TIMEOUT_MS,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    };
    this.chat = createOpenAiChat(engineOptions);
    this.complete = createOpenAiCompletion(engineOptions);
  }

  /** `http://host:port` of the running engine; throws before {@link start} succeeded. */
  get baseUrl(): string {
    if (!this.url) throw new Error('engine not started');
    return this.url;
  }

  /** Pid of the engine's leader process (= its process-group id), if running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the engine and resolves once `GET /v1/models` answers 200; INFRA `vllm_boot_failed` otherwise. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.child) throw new Error('engine already started; stop() it first');
    const port = this.opts.port ?? (await findFreePort(this.host));
    const apiKeyEnv = this.opts.apiKey ? (this.opts.apiKeyEnv ?? DEFAULT_API_KEY_ENV) : null;
    const cmd = this.opts.command({ host: this.host, port, apiKeyEnv });
    if ([cmd.command, ...cmd.args].some((a) => a === '--trust-remote-code' || a.startsWith('--trust-remote-code='))) {
      throw new EngineFault(stageFault('INFRA_FAULT', 'vllm_boot_failed', 'refusing to start an engine with --trust-remote-code'));
    }
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(this.opts.env ?? process.env)) if (v !== undefined && !SECRET_ENV_PATTERN.test(k)) env[k] = v;
    Object.assign(env, cmd.env ?? {});
    if (apiKeyEnv && this.opts.apiKey) env[apiKeyEnv] = this.opts.apiKey;

    const child = spawn(cmd.command, [...cmd.args], { detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exit = null;
    this.outputTail = '';
    this.exited = new Promise<ExitInfo>((resolve) => {
      const settle = (info: ExitInfo) => {
        this.exit ??= info;
        resolve(this.exit);
      };
      child.once('exit', (code, sig) => settle({ code, signal: sig }));
      child.once('error', (error) => settle({ code: null, signal: null, error }));
    });
    this.closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const keepTail = (chunk: Buffer) => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-DEFAULT_OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keepTail);
    child.stderr?.on('data', keepTail);

    const url = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${port}`;
    try {
      await this.waitReady(url, signal);
      this.url = url;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private async waitReady(url: string, signal?: AbortSignal): Promise<void> {
    const timeoutMs = this.opts.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
    const pollMs = this.opts.pollIntervalMs ?? DEFAULT_READINESS_POLL_INTERVAL_MS;
    const deadline = Date.now() + timeoutMs;
    const bootFailed = (why: string) => {
      const tail = this.outputTail.trim().split('\n').slice(-5).join(' | ');
      return new EngineFault(stageFault('INFRA_FAULT', 'vllm_boot_failed', `${why}${tail ? `; last output: ${tail}` : ''}`));
    };
    for (;;) {
      if (signal?.aborted) throw new EngineFault(stageFault('INFRA_FAULT', 'run_cancelled', 'engine start cancelled'));
      if (this.exit) {
        const e = this.exit;
        // Give the pipes a moment to deliver the engine's last words (grandchildren may hold them open).
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.closed, new Promise((resolve) => (timer = setTimeout(resolve, 250)))]);
        clearTimeout(timer);
        throw bootFailed(e.error ? `engine failed to spawn: ${e.error.message}` : `engine exited before becoming ready (code ${e.code}, signal ${e.signal})`);
      }
      if (await this.probe(url, deadline)) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw bootFailed(`engine not ready after ${timeoutMs} ms`);
      // Wake early if the process dies; no point waiting out the poll interval.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, Math.min(pollMs, remaining))))]);
      clearTimeout(timer);
    }
  }

  private async probe(url: string, deadline: number): Promise<boolean> {
    try {
      const response = await fetch(`${url}/v1/models`, {
        headers: this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {},
        signal: AbortSignal.timeout(Math.max(1, Math.min(DEFAULT_READINESS_PROBE_TIMEOUT_MS, deadline - Date.now()))),
      });
      await response.body?.cancel();
      return response.status === 200;
    } catch {
      return false; // not listening yet
    }
  }

  /**
   * SIGTERM to our process group, SIGKILL after the grace period. Only the group recorded at spawn
   * (pgid = leader pid) is signalled, and only while it still has members, so a recycled id is safe.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const child = this.child;
    const pgid = child?.pid;
    this.url = null;
    if (!child || pgid === undefined) {
      this.child = null;
      return;
    }
    const graceMs = this.opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    const gone = () => this.exit !== null && !processGroupAlive(pgid);
    if (!gone()) signalProcessGroup(pgid, 'SIGTERM');
    if (!(await this.waitUntil(gone, graceMs))) {
      if (this.exit === null || processGroupAlive(pgid)) signalProcessGroup(pgid, 'SIGKILL');
      await this.waitUntil(gone, graceMs);
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
    this.child = null;
  }

  private async waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() >= deadline) return false;
      // Leader exit wakes us immediately; stray group members are re-checked every 25 ms.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exit ? new Promise(() => {}) : this.exited, new Promise((resolve) => (timer = setTimeout(resolve, 25)))]);
      clearTimeout(timer);
    }
    return true;
  }
}
