import { randomBytes, randomUUID } from 'node:crypto';
import type { Stage } from '../../core/ids.ts';
import { DEFAULT_LIMITS, type SubmissionLimits } from '../../machines/submission.ts';
import type { StageTiming } from '../../persistence/claims.ts';
import type { Db } from '../../persistence/db.ts';
import type { NewReveal } from '../../persistence/submissions.ts';
import { Dispatcher } from '../../actors/dispatcher.ts';
import { ActorHost } from '../../actors/host.ts';
import { type InProcessExecutor, localStageClient, StageService, type StageHooks } from '../../actors/stage-service.ts';
import { Sweeper } from '../../actors/sweeper.ts';

/** Limits for fast suites: backoffs scaled down 10,000× (a 1-minute backoff becomes 6 ms). */
export const FAST_LIMITS: SubmissionLimits = { ...DEFAULT_LIMITS, backoffScale: 1e-4 };

export const FAST_LEASES: Record<Stage, number> = { HIPPIUS: 600_000, PRE_EVAL: 900_000, EVAL: 300_000, SET_REIGN: 60_000, WEIGHT_SET: 300_000 };

/** A reveal with a random hotkey and digest, as the chain reader would ingest it. */
export function randomReveal(overrides: Partial<NewReveal> = {}): NewReveal {
  const digest = `sha256:${randomBytes(32).toString('hex')}`;
  const repo = `miner${randomBytes(3).toString('hex')}/albedo-qwen3.6-35b-demo`;
  return {
    netuid: 97,
    hotkey: `5${randomBytes(20).toString('hex')}`,
    uid: Math.floor(Math.random() * 255),
    blockNumber: 1000 + Math.floor(Math.random() * 1000),
    blockHash: `0x${randomBytes(32).toString('hex')}`,
    repo,
    digest,
    raw: `v7|${repo}|${digest}`,
    ...overrides,
  };
}


export interface InProcessPipeline {
  readonly host: ActorHost;
  readonly service: StageService;
  readonly dispatcher: Dispatcher;
  readonly sweeper: Sweeper;
  stop(): Promise<void>;
}

/** Wires host + stage service + dispatcher + sweeper in one process with in-process executors. */
export async function startInProcessPipeline(opts: {
  db: Db;
  executors: Partial<Record<Stage, InProcessExecutor>>;
  hooks?: Partial<Record<Stage, StageHooks>>;
  nodeId?: string;
  limits?: SubmissionLimits;
  timing?: Partial<Record<Stage, StageTiming>>;
  concurrency?: Partial<Record<Stage, number>>;
  actorLeaseMs?: number;
  onError?: (e: Error, ctx: string) => void;
}): Promise<InProcessPipeline> {
  const incarnation = randomUUID();
  const onError = opts.onError ?? ((e: Error, ctx: string) => console.error(`[${ctx}]`, e.message));
  const service = new StageService({ db: opts.db, incarnation, executors: opts.executors, hooks: opts.hooks, leaseMs: FAST_LEASES, onError });
  const host = new ActorHost({ db: opts.db, nodeId: opts.nodeId ?? 'test-node', incarnation, stageClient: localStageClient(service), limits: opts.limits ?? FAST_LIMITS, actorLeaseMs: opts.actorLeaseMs, onError });
  const dispatcher = new Dispatcher({ db: opts.db, host, remoteStages: new Set(), concurrency: opts.concurrency, timing: opts.timing, pollMs: 50, onError });
  const sweeper = new Sweeper({ db: opts.db, host, notify: (k) => service.notify(k), onError });
  await host.start();
  dispatcher.start();
  return {
    host,
    service,
    dispatcher,
    sweeper,
    stop: async () => {
      await dispatcher.stop();
      sweeper.stop();
      service.close();
      await host.stop();
    },
  };
}
