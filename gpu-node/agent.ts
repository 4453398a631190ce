import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { stageFault } from '../core/faults.ts';
import type { EvalInput, PreEvalInput, StageOutcome, StageProgress } from '../core/stage.ts';
import { createAlbedoClient, type AlbedoClient } from '../rpc/client.ts';
import type { ArtifactStore } from '../persistence/artifact-store.ts';
import type { ChatFn, CompletionFn, EvalPrompt } from './executors.ts';
import { runEval, runPreEval } from './executors.ts';
import { type NodeRun, RunStore } from './run-store.ts';

/** @default 30000 (spec §4.1: heartbeat every 30 s) */
export const DEFAULT_NODE_HEARTBEAT_MS = 30_000;
/** Backoff of re-sent reports while the backend is unreachable. */
export const REPORT_RETRY_MS = (attempt: number) => Math.min(200 * 2 ** attempt, 10_000);

export interface Engine {
  readonly chat: ChatFn;
  /** Raw-prompt completions (`/v1/completions`), for pinned-template prompts. @default none (chat only) */
  readonly complete?: CompletionFn;
  stop(): Promise<void>;
}

export interface GpuNodeAgentOptions {
  readonly backendUrl: string;
  /** This node's token; the backend derives the node id from it. */
  readonly token: string;
  readonly role: 'PRE_EVAL' | 'EVAL';
  readonly gpuCount: number;
  /** @default 1 */
  readonly maxConcurrent?: number;
  /** Where runs are persisted (ALBEDO_REMOTE_STATE_DIR). */
  readonly stateDir: string;
  /** Starts the engine(s) serving `models` for one run (vLLM in production, the stub locally). */
  readonly startEngine: (models: readonly string[], signal: AbortSignal) => Promise<Engine>;
  /** Prompts of an eval (dataset sampling lands with the duel issue; see executors). */
  /** The eval's prompts in sample order: the dataset sampler (dataset/eval-prompts.ts) or the demo pool. */
  readonly evalPrompts: (input: EvalInput) => EvalPrompt[] | Promise<EvalPrompt[]>;
  /** @default DEFAULT_NODE_HEARTBEAT_MS */
  readonly heartbeatMs?: number;
  /**
   * Appends `<attemptKey>\n` to this file when a run's work begins — instrumentation for the
   * chaos suite, which proves no attempt key ever runs twice.
   */
  readonly sideEffectLog?: string;
  readonly log?: (line: string) => void;
  /** Where eval artifacts are uploaded after spooling (duel.md §11). @default null (local spool only) */
  readonly artifactStore?: ArtifactStore | null;
  /** Remove an eval's spool after its upload (`ALBEDO_REMOTE_CLEANUP_LOCAL_ARTIFACTS`). @default false */
  readonly cleanupLocalArtifacts?: boolean;
}

/**
 * The GPU node agent. It dials out to the backend (no inbound port), announces itself, receives
 * assignments over a subscription, persists each run before acknowledging it, runs it, and reports
 * progress and the outcome until each report is acknowledged. Re-sent reports are idempotent on
 * the backend by (attempt key, sequence number).
 */
export class GpuNodeAgent {
  private client: AlbedoClient | null = null;
  private readonly store: RunStore;
  private readonly active = new Map<string, AbortController>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private sub: { unsubscribe(): void } | null = null;

  constructor(private readonly o: GpuNodeAgentOptions) {
    this.store = new RunStore(o.stateDir);
  }

  async start(): Promise<void> {
    await probeToken(this.o.backendUrl, this.o.token);
    this.client = createAlbedoClient({
      url: this.o.backendUrl,
      token: this.o.token,
      WebSocket,
      onOpen: () => void this.hello(),
    });
    await this.hello();
    // Runs recorded before a restart: finished ones are re-reported; interrupted ones failed with
    // the node, which is our fault (REMOTE_EVAL), never the miner's.
    for (const run of this.store.all()) {
      if (run.status !== 'done') {
        run.status = 'done';
        run.outcome = { status: 'failed', fault: stageFault('REMOTE_EVAL_FAULT', 'remote_worker_failed', 'GPU node restarted during the run') };
        this.store.save(run);
      }
      void this.deliver(run);
    }
    this.sub = this.client.api.node.assignments.subscribe(undefined, {
      onData: (a) => void this.onAssignment(a as { attemptKey: string; stage: 'PRE_EVAL' | 'EVAL'; epoch: string; input: Record<string, unknown> }),
      onError: (e) => this.o.log?.(`assignments: ${e.message}`),
    });
    this.timer = setInterval(() => void this.heartbeat(), this.o.heartbeatMs ?? DEFAULT_NODE_HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    for (const c of this.active.values()) c.abort();
    await this.client?.close();
  }

  private async hello(): Promise<void> {
    try {
      await this.client?.api.node.hello.mutate({ role: this.o.role, gpuCount: this.o.gpuCount, maxConcurrent: this.o.maxConcurrent ?? 1 });
      await this.heartbeat();
    } catch (e) {
      this.o.log?.(`hello failed: ${(e as Error).message}`);
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.client || this.stopped) return;
    try {
      const { cancel } = await this.client.api.node.heartbeat.mutate({ running: [...this.active.keys()] });
      for (const key of cancel) this.active.get(key)?.abort();
    } catch (e) {
      this.o.log?.(`heartbeat failed: ${(e as Error).message}`);
    }
  }

  private async onAssignment(a: { attemptKey: string; stage: 'PRE_EVAL' | 'EVAL'; epoch: string; input: Record<string, unknown> }): Promise<void> {
    if (this.store.load(a.attemptKey)) {
      // Re-delivered after a reconnect: we already own it. Acknowledge again, run nothing twice.
      await this.client?.api.node.accept.mutate({ attemptKey: a.attemptKey, epoch: a.epoch, runId: a.attemptKey }).catch(() => {});
      return;
    }
    const run: NodeRun = { attemptKey: a.attemptKey, stage: a.stage, epoch: a.epoch, input: a.input, status: 'accepted', seq: 0, unacked: [], outcome: null, outcomeAcked: false };
    this.store.save(run); // persist before acknowledging: an accepted run is never forgotten
    const accepted = await this.withRetry(() => this.client!.api.node.accept.mutate({ attemptKey: a.attemptKey, epoch: a.epoch, runId: a.attemptKey }));
    if (!accepted?.accepted) {
      this.store.remove(a.attemptKey);
      return;
    }
    await this.execute(run);
  }

  private async execute(run: NodeRun): Promise<void> {
    const controller = new AbortController();
    this.active.set(run.attemptKey, controller);
    run.status = 'running';
    this.store.save(run);
    if (this.o.sideEffectLog) appendFileSync(this.o.sideEffectLog, `${run.attemptKey}\n`);
    let engine: Engine | null = null;
    let outcome: StageOutcome;
    try {
      const emit = async (progress: StageProgress) => {
        run.seq += 1;
        run.unacked.push({ seq: run.seq, progress });
        this.store.save(run);
        void this.flushProgress(run);
      };
      if (run.stage === 'PRE_EVAL') {
        const input = run.input as unknown as PreEvalInput;
        engine = await this.o.startEngine([input.modelUri], controller.signal);
        outcome = await runPreEval(input, { chat: engine.chat, emit, signal: controller.signal });
      } else {
        const input = run.input as unknown as EvalInput;
        engine = await this.o.startEngine([input.kingModelUri, input.challengerModelUri], controller.signal);
        const client = this.client!;
        outcome = await runEval(input, {
          chat: engine.chat,
          ...(engine.complete ? { complete: engine.complete } : {}),
          artifactStore: this.o.artifactStore ?? null,
          cleanupLocalArtifacts: this.o.cleanupLocalArtifacts ?? false,
          emit,
          signal: controller.signal,
          prompts: await this.o.evalPrompts(input),
          attemptKey: run.attemptKey,
          // duel.md §11: the run's artifacts are spooled beside its persisted state, one directory per attempt.
          artifactDir: join(this.o.stateDir, 'artifacts', run.attemptKey.replace(/[^A-Za-z0-9_.-]/g, '_')),
          judge: { judgeDuel: (req) => client.api.node.judge.mutate({ attemptKey: run.attemptKey, epoch: run.epoch, samples: req.samples.map((s) => ({ ...s })), totalSampleCount: req.totalSampleCount }) as never },
        });
      }
    } catch (error) {
      const fault = (error as { fault?: unknown }).fault;
      outcome = {
        status: 'failed',
        fault: fault && typeof fault === 'object' ? (fault as never) : stageFault('REMOTE_EVAL_FAULT', 'remote_worker_failed', `node run failed: ${(error as Error).message}`),
      };
    } finally {
      await engine?.stop().catch(() => {});
      this.active.delete(run.attemptKey);
    }
    run.status = 'done';
    run.outcome = outcome;
    this.store.save(run);
    await this.deliver(run);
  }

  /** Sends unacknowledged progress, then the outcome, until each is acknowledged. */
  private async deliver(run: NodeRun): Promise<void> {
    await this.flushing.get(run.attemptKey);
    await this.flushProgress(run);
    if (!run.outcome || run.outcomeAcked) return;
    const outcome = run.outcome;
    const r = await this.withRetry(() => this.client!.api.node.report.mutate({ attemptKey: run.attemptKey, epoch: run.epoch, seq: run.seq + 1, outcome: outcome as never }));
    if (r) {
      run.outcomeAcked = true;
      this.store.remove(run.attemptKey);
    }
  }

  /** In-flight progress flush per run: single-flight, so a report is never popped before its ack. */
  private readonly flushing = new Map<string, Promise<void>>();

  private flushProgress(run: NodeRun): Promise<void> {
    const inFlight = this.flushing.get(run.attemptKey);
    if (inFlight) return inFlight;
    const flush = this.flushLoop(run).finally(() => this.flushing.delete(run.attemptKey));
    this.flushing.set(run.attemptKey, flush);
    return flush;
  }

  private async flushLoop(run: NodeRun): Promise<void> {
    while (run.unacked.length > 0 && !this.stopped) {
      const next = run.unacked[0]!;
      const r = await this.withRetry(() => this.client!.api.node.report.mutate({ attemptKey: run.attemptKey, epoch: run.epoch, seq: next.seq, progress: { type: next.progress.type, data: { ...next.progress.data } } }));
      if (!r) return;
      run.unacked.shift();
      if (r.stop) this.active.get(run.attemptKey)?.abort();
    }
  }

  /** Retries a mutation until the backend answers; a definite refusal (4xx-like) returns null. */
  private async withRetry<T>(fn: () => Promise<T>): Promise<T | null> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const code = (e as { data?: { code?: string } }).data?.code;
        if (code === 'NOT_FOUND' || code === 'FORBIDDEN' || code === 'UNAUTHORIZED' || code === 'BAD_REQUEST' || code === 'CONFLICT') return null;
        await new Promise((r) => setTimeout(r, REPORT_RETRY_MS(attempt)));
      }
    }
    return null;
  }
}

/**
 * Fails fast with a clear message when the backend refuses this node's token (HTTP 401 at the
 * upgrade); the tRPC link would otherwise retry the connection forever and hold every call.
 * Unreachable backends are not an error here: the link reconnects when they come up.
 */
export async function probeToken(url: string, token: string, timeoutMs = 5_000): Promise<void> {
  const status = await new Promise<number | null>((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve(null);
    }, timeoutMs);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      clearTimeout(timer);
      ws.close();
      resolve(101);
    });
    ws.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  if (status === 401) throw new Error(`the backend at ${url} refused this node's token (HTTP 401); check ALBEDO_NODE_TOKEN`);
}
